"""Inbound under stress on the real Asterisk: a controller crash with callers waiting, and 50
concurrent callers against 5 agents. No caller may hear silence or be dropped; every call ends
in exactly one recorded outcome."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from controller.asterisk.events import AgentConnect, Newexten
from testbed.asterisk import AsteriskInstance

from .harness import Api, ControllerProcess, running_controller, wait_for
from .test_inbound import (
    ANNOUNCEMENT,
    all_rows,
    inbound_toml,
    login,
    logout_all,
    number,
    queue_toml,
    routing,
    rule,
    unique_queue,
    watch_events,
)


async def test_a_controller_crash_strands_no_caller(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: Any, tmp_path: Path
) -> None:
    """SIGKILL with callers waiting and more arriving: each is answered by an agent or sent to
    the queue's static overflow (fallback_timeout) by the dialplan alone."""
    q = unique_queue("crash")
    path = tmp_path / "c.toml"
    config = routing(
        controller_config_file,
        inbound_toml(queue_toml(q, fallback_timeout=8,
                                fallback_destination=f'"{ANNOUNCEMENT}"'), number("5000", q)),
        path, asterisk,
    )
    phones = sipp.agent_phones(RING_S="1", TALK_MS="2000")
    api = Api(config)
    process = ControllerProcess(path, tmp_path / "controller.log")
    process.start()
    try:
        await wait_for(api.healthy, 20, "the controller process to be healthy")
        await login(api, "1001")
        await login(api, "1002")
        callers = sipp.call("5000", calls=10, rate=2, HOLD_MS="60000")
        await asyncio.sleep(2.0)  # some callers routed and waiting, the rest still to come
        process.kill()
        stats = await asyncio.to_thread(callers.wait, 60)
    finally:
        process.kill()
        for agent in ("1001", "1002"):
            asterisk.cli(f"queue remove member PJSIP/{agent} from {q}")
    # every caller's call ended with Asterisk's BYE: an agent hung up, or the announcement ended
    assert (stats.created, stats.successful, stats.failed) == (10, 10, 0), callers.output()
    assert callers.received_requests().count("BYE") == 10
    answered = phones.received_requests().count("ACK") - phones.received_requests().count(
        "CANCEL")
    assert answered >= 2  # the agents kept working through the crash
    assert "PJSIP/trunk" not in asterisk.cli("core show channels concise")


async def test_fifty_concurrent_callers_each_end_in_one_recorded_outcome(
    asterisk: AsteriskInstance, controller_config_file: Path, sipp: Any, tmp_path: Path
) -> None:
    q = unique_queue("load")
    agents = ["1001", "1002", "1003", "1004", "1005"]
    config = routing(
        controller_config_file,
        inbound_toml(
            queue_toml(q, rule("load-wait", "max_wait", ANNOUNCEMENT, seconds=6),
                       members=str(agents).replace("'", '"')),
            number("5000", q),
        ),
        tmp_path / "c.toml", asterisk,
    )
    phones = sipp.agent_phones(RING_S="1", TALK_MS="1000")
    api = Api(config)
    async with running_controller(config) as running:
        controller = running.controller
        events = watch_events(controller)
        try:
            for agent in agents:
                await login(api, agent)
            started = time.time()
            callers = sipp.call("5000", calls=50, rate=25, HOLD_MS="60000")
            stats = await asyncio.to_thread(callers.wait, 80)
            rows = await wait_for(
                lambda: _all_ended(controller, 50), 20, "50 ended inbound calls in the store")
        finally:
            await logout_all(api)
    print(f"50 callers in {time.time() - started:.1f} s")
    assert (stats.created, stats.successful, stats.failed) == (50, 50, 0), callers.output()
    assert callers.received_requests().count("BYE") == 50
    outcomes = [r["outcome"] for r in rows]
    assert set(outcomes) <= {"answered", "overflowed"}, outcomes
    assert len({r["call_id"] for r in rows}) == 50
    phones.stop()  # a running sipp may not have written its whole message trace yet
    answered_at_phones = phones.answered_calls()
    assert outcomes.count("answered") == answered_at_phones == len(events.of(AgentConnect))
    overflowed = [r for r in rows if r["outcome"] == "overflowed"]
    assert all(r["rule"] == "load-wait" and r["destination"] == ANNOUNCEMENT for r in overflowed)
    assert len(overflowed) == len(events.of(Newexten, context="callctl-announcement",
                                            priority=1))
    assert all(r["agent_id"] in agents for r in rows if r["outcome"] == "answered")


async def _all_ended(controller: Any, count: int) -> list[Any] | None:
    rows = [r for r in await all_rows(controller) if r["ended_at"] is not None]
    return rows if len(rows) >= count else None
