"""The controller killed at each crash point of an outbound call, then started again.

``CALLCTL_CRASH_AT=<point>:<n>`` makes ``callctl serve`` SIGKILL itself the n-th time it passes
the point (``controller/faults.py``): after a claim's commit (attempts stored, nothing dialed),
after an originate is sent, after a customer answered, after a customer was bridged to an agent.
A second controller without the switch finishes the campaign. The carrier's sipp is the witness:
no lead lost, no number dialed twice at once, and the store's attempts add up to the INVITEs the
carrier saw; an attempt that was never dialed gives its lead the attempt back (``not_dialed``).
The restarted controller takes over the agents' legs still seated in their bridges: the last
test kills it during a call and checks, at the agent phones and the carrier, that nobody
noticed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.config import load_config
from controller.faults import CRASH_ENV
from testbed.asterisk import AsteriskInstance
from testbed.sipp import SippPool

from .harness import Api, ControllerProcess, logged_events, wait_for
from .test_dialer import (
    ALWAYS_ANSWER,
    QUICK_CUSTOMERS,
    acli,
    campaign_toml,
    carrier_calls,
    invites_by_number,
    overlapping,
    phone,
    setup_campaign,
    store_rows,
    zone_at_local_hour,
)

LEADS = 16
# the n-th pass crashes: late enough that calls of every kind are under way
CRASH_AT = {
    "after_claim_commit": 3,
    "after_originate_sent": 6,
    "after_customer_answered": 3,
    "after_bridge": 3,
}


ADOPTING_AGENTS = ("1001", "1002")
FIRST_TALK_MS = 15000  # the call under way at the kill outlasts the restart


@pytest.mark.timeout(240)
@pytest.mark.parametrize("point", sorted(CRASH_AT))
async def test_a_crash_at_each_point_loses_no_lead_and_dials_none_twice(
    point: str,
    asterisk: AsteriskInstance,
    controller_config_file: Path,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    config_file = controller_config_file
    config = load_config(config_file)
    name = f"crash-{sorted(CRASH_AT).index(point)}"
    first = 6000 + 100 * sorted(CRASH_AT).index(point)
    numbers = [phone(first + i) for i in range(LEADS)]
    zone = zone_at_local_hour(12)
    await setup_campaign(
        config_file, name, "phone,timezone\n" + "".join(f"{n},{zone}\n" for n in numbers),
        campaign_toml(max_attempts=3), tmp_path,
    )
    sipp.agent_phones(RING_S="1", TALK_MS="600000")
    carrier = sipp.carrier(**QUICK_CUSTOMERS)
    log_file = tmp_path / "controller.log"
    crashing = ControllerProcess(
        config_file, log_file, env={CRASH_ENV: f"{point}:{CRASH_AT[point]}"}
    )
    restarted = ControllerProcess(config_file, log_file)
    api = Api(config)
    campaign = {"c": name}
    try:
        crashing.start()
        await wait_for(api.healthy, 20, "the controller to be healthy")
        await acli(config_file, "campaign", "start", name)
        await wait_for(crashing.exited, 90, f"the controller to crash {point}")
        open_at_crash = {
            row["attempt_id"] for row in await store_rows(
                config, "SELECT attempt_id FROM attempts WHERE campaign = :c"
                " AND state = 'dialing'", campaign,
            )
        }
        restarted.start()
        await wait_for(api.healthy, 20, "the restarted controller to be healthy")
        await _finish(config_file, name, LEADS, 150)
    finally:
        crashing.stop()
        restarted.stop()

    attempts = await store_rows(
        config, "SELECT * FROM attempts WHERE campaign = :c ORDER BY phone, started_at", campaign
    )
    leads = {
        row["phone"]: row
        for row in await store_rows(config, "SELECT * FROM leads WHERE campaign = :c", campaign)
    }
    seen = invites_by_number(carrier_calls(carrier))
    events = logged_events(log_file)
    crash = [e for e in events if e["event"] == "faults.crashing"]
    assert [e["point"] for e in crash] == [point]
    # the dead controller's seated agents were taken over by the restarted one (a call under
    # way at the crash too: the last test); their bridges are gone after the stop
    assert [e for e in events if e["event"] == "dialer.agent_leg_adopted"]
    assert "agent-bridge-" not in asterisk.cli("bridge show all")

    # no lead lost, none dialed twice at once, the store adds up to what the carrier saw
    assert sorted(leads) == sorted(numbers)
    assert all(lead["state"] == "done" for lead in leads.values())
    assert overlapping(seen) == [], "two calls to one number at the same time"
    dialed = [a for a in attempts if a["result"] != "not_dialed"]
    assert len(dialed) == sum(len(dialogs) for dialogs in seen.values())
    for number in numbers:
        spent = [a for a in dialed if a["phone"] == number]
        assert leads[number]["attempts"] == len(spent) == len(seen.get(number, []))
    assert not [a for a in attempts if a["result"] == "failed" and a["cause"] is None]

    # every attempt open at the crash was adopted, settled from its record, or given back
    reconciled = {
        e["attempt_id"] for e in events
        if e["event"] in ("dialer.attempt_adopted", "dialer.attempt_settled")
    }
    assert reconciled == open_at_crash
    result_of = {a["attempt_id"]: a["result"] for a in attempts}
    if point == "after_claim_commit":  # claimed and committed, never originated
        cut = crash[0]["attempts"]
        assert cut and all(result_of[attempt] == "not_dialed" for attempt in cut)
    elif point == "after_originate_sent":
        assert result_of[crash[0]["attempt_id"]] != "not_dialed"
    elif point == "after_customer_answered":
        assert result_of[crash[0]["attempt_id"]] in ("human", "abandoned")
    else:
        assert result_of[crash[0]["attempt_id"]] == "human"
    print(
        f"\n{point}: {len(attempts)} attempts ({len(attempts) - len(dialed)} not dialed), "
        f"{len(open_at_crash)} open at the crash, results {sorted(set(result_of.values()))}"
    )


async def _finish(config_file: Path, name: str, leads: int, within_s: float) -> None:
    """Wait for the campaign's ``leads`` to be done and no attempt open, then stop it."""
    config, campaign = load_config(config_file), {"c": name}
    await wait_for(
        lambda: _count(config, "SELECT COUNT(*) AS n FROM leads WHERE campaign = :c"
                       " AND state = 'done'", campaign, leads),
        within_s, "every lead to be done", every=1.0,
    )
    await wait_for(
        lambda: _count(config, "SELECT COUNT(*) AS n FROM attempts WHERE campaign = :c"
                       " AND state = 'dialing'", campaign, 0, at_least=False),
        30, "no attempt left open",
    )
    await acli(config_file, "campaign", "stop", name)


async def _count(
    config: Any, sql: str, params: dict[str, Any], wanted: int, at_least: bool = True
) -> bool:
    rows = await store_rows(config, sql, params)
    count = int(rows[0]["n"])
    return count >= wanted if at_least else count == wanted


@pytest.mark.timeout(150)
async def test_a_restart_keeps_the_agents_on_their_lines_and_the_call_under_way_going(
    asterisk: AsteriskInstance,
    controller_config_file: Path,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    """Killed while one agent talks to a customer and the other waits: the restarted controller
    takes both legs over. The agent phones' sipp is the witness: each agent was called once
    over the whole test, and the carrier's: the first customer's call was not cut."""
    config_file = controller_config_file
    config = load_config(config_file)
    name, zone = "adopt", zone_at_local_hour(12)
    await setup_campaign(
        config_file, name, f"phone,timezone\n{phone(7000)},{zone}\n",
        campaign_toml(agents=ADOPTING_AGENTS, max_call_seconds=60), tmp_path,
    )
    agent_phones = sipp.agent_phones(RING_S="1", TALK_MS="600000")
    carrier = sipp.carrier(**ALWAYS_ANSWER, TALK_MS=str(FIRST_TALK_MS))
    log_file = tmp_path / "controller.log"
    killed, restarted = ControllerProcess(config_file, log_file), ControllerProcess(
        config_file, log_file)
    api = Api(config)
    campaign = {"c": name}

    def seen(event: str) -> list[dict[str, Any]]:
        return logged_events(log_file, event)

    try:
        killed.start()
        await wait_for(api.healthy, 20, "the controller to be healthy")
        await acli(config_file, "campaign", "start", name)
        await wait_for(lambda: len(seen("dialer.agent_ready")) == 2 and seen("dialer.connected"),
                       40, "both agents seated, one of them talking")
        (connected,) = seen("dialer.connected")
        killed.kill()
        restarted.start()
        await wait_for(api.healthy, 20, "the restarted controller to be healthy")
        await wait_for(lambda: len(seen("dialer.agent_leg_adopted")) == 2, 20,
                       "both legs adopted")
        more = tmp_path / "more.csv"
        more.write_text(f"phone,timezone\n{phone(7001)},{zone}\n{phone(7002)},{zone}\n")
        await acli(config_file, "campaign", "import", name, str(more))
        await _finish(config_file, name, 3, 60)
    finally:
        killed.stop()
        restarted.stop()

    adopted = {e["agent_id"]: e["attempt_id"] for e in seen("dialer.agent_leg_adopted")}
    talking = connected["agent_id"]
    waiting = next(agent for agent in ADOPTING_AGENTS if agent != talking)
    assert adopted == {talking: connected["attempt_id"], waiting: None}
    states = {e["agent_id"]: e["state"] for e in seen("dialer.agent_leg_adopted")}
    assert states == {talking: "on_call", waiting: "ready"}
    # no agent was called again: one INVITE dialog per agent phone
    dialogs = [m for m in agent_phones.requests_by_call().values() if m and m[0] == "INVITE"]
    assert len(dialogs) == len(ADOPTING_AGENTS), agent_phones.requests_by_call()
    # every customer, the first too, talked its whole call and hung up itself: no BYE came
    customers = [
        methods for methods in carrier.requests_by_call().values() if methods[:1] == ["INVITE"]
    ]
    assert len(customers) == 3 and all("BYE" not in m for m in customers), customers
    attempts = await store_rows(
        config, "SELECT * FROM attempts WHERE campaign = :c ORDER BY started_at", campaign)
    assert [a["result"] for a in attempts] == ["human"] * 3
    assert attempts[0]["attempt_id"] == connected["attempt_id"]
    # the later calls went to the adopted legs' agents
    assert {a["agent_id"] for a in attempts[1:]} <= set(ADOPTING_AGENTS)
    assert all(a["agent_id"] for a in attempts[1:])
    assert "agent-bridge-" not in asterisk.cli("bridge show all")
