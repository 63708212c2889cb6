"""Agent accounts from ``[agents]``: 40 agents of a range render into phones that register with
their generated passwords (a wrong one is refused with 401), and a reload with one agent
removed leaves the calls in progress up, the removed agent's own included.

The instance runs on the slot's second ports (``demo_test_ports``, as test_site's do) without
the suite's static agent contact, so the phones register for real.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from controller.site.deploy import render_to
from testbed.agent_range import AgentRangeInstance
from testbed.asterisk import AsteriskInstance, demo_test_ports, ensure_root
from testbed.asterisk import test_slot as session_slot
from testbed.sip_ua import Phone, register_all
from testbed.sipp import SippPool

from .harness import wait_for

FIRST, LAST = 2001, 2040
PHONE_IP = "127.0.0.5"  # no endpoint is identified by it (the carrier is 127.0.0.2)


@pytest.fixture
def range_instance(tmp_path: Path) -> Iterator[AgentRangeInstance]:
    ensure_root()
    slot = session_slot()
    ports = dataclasses.replace(demo_test_ports(slot), agent_phone=None)
    instance = AgentRangeInstance(f"agents{slot or ''}", tmp_path / "state", ports,
                                  first=FIRST, last=LAST)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def phones(instance: AsteriskInstance) -> list[Phone]:
    passwords = instance.secrets.agent_passwords
    return [Phone(str(agent), passwords[str(agent)]) for agent in range(FIRST, LAST + 1)]


async def test_forty_agents_register_with_their_passwords_and_a_wrong_one_gets_401(
    range_instance: AgentRangeInstance,
) -> None:
    instance = range_instance
    server = ("127.0.0.1", instance.ports.sip)
    statuses = await register_all(phones(instance), server, PHONE_IP)
    assert statuses == {str(agent): 200 for agent in range(FIRST, LAST + 1)}
    contacts = instance.cli("pjsip show contacts")
    assert all(f"{agent}/sip:{agent}@{PHONE_IP}" in contacts for agent in range(FIRST, LAST + 1))

    wrong = await register_all([Phone("2001", "not-the-password")], server, PHONE_IP)
    assert wrong == {"2001": 401}
    assert await register_all([Phone("2999", "x")], server, PHONE_IP) == {"2999": 401}
    assert re.search(r'callerid +: "Seat 2007" <2007>', instance.cli("pjsip show endpoint 2007"))


async def test_a_reload_with_one_agent_removed_keeps_the_calls_in_progress(
    range_instance: AgentRangeInstance, tmp_path: Path,
) -> None:
    """The removed agent's own call and a remaining agent's both stay up to their end."""
    instance = range_instance
    secrets = instance.secrets
    removed, kept = str(LAST), str(FIRST)
    pool = SippPool(tmp_path / "sipp", instance.ports.sip, None, instance.ports.trunk)
    try:
        pool.carrier(ANSWER_UPTO="1", BUSY_UPTO="1", RING_MIN_S="0", RING_MAX_S="0",
                     TALK_MS="30000")
        calls = [pool.agent_call(agent, secrets.agent_passwords[agent], "902079460000",
                                 HOLD_MS="6000") for agent in (removed, kept)]
        await wait_for(lambda: instance.cli("core show channels concise").count("!Up!") == 4,
                       10, "both agents' calls to be answered")
        site_file = instance.site_file()
        data = tomllib.loads(site_file.read_text())
        data["agents"]["range"][0]["last"] = LAST - 1
        site_file.write_text(tomli_w.dumps(data))
        result = render_to(site_file, instance.config_dir)
        assert sorted(result.written) == ["callctl-agents.conf", "pjsip.conf"]
        for command in ("module reload res_pjsip.so", "dialplan reload"):
            instance.cli(command)
        assert "Unable to find object" in instance.cli(f"pjsip show endpoint {removed}")
        assert kept in instance.cli(f"pjsip show endpoint {kept}")
        channels = instance.cli("core show channels concise")
        assert f"PJSIP/{removed}-" in channels and f"PJSIP/{kept}-" in channels, channels
        stats = [await asyncio.to_thread(call.wait, 20) for call in calls]
    finally:
        pool.close()
    # each call lasted its 6 s and ended with the phone's own BYE, answered 200
    for call, counts in zip(calls, stats, strict=True):
        assert (counts.successful, counts.failed) == (1, 0), call.output()
        assert "BYE" not in call.received_requests()
