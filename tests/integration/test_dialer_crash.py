"""The controller killed at each crash point of an outbound call, then started again.

``CALLCTL_CRASH_AT=<point>:<n>`` makes ``callctl serve`` SIGKILL itself the n-th time it passes
the point (``controller/faults.py``): after a claim's commit (attempts stored, nothing dialed),
after an originate is sent, after a customer answered, after a customer was bridged to an agent.
A second controller without the switch finishes the campaign. The carrier's sipp is the witness:
no lead lost, no number dialed twice at once, and the store's attempts add up to the INVITEs the
carrier saw; an attempt that was never dialed gives its lead the attempt back (``not_dialed``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller.config import load_config
from controller.faults import CRASH_ENV
from testbed.asterisk import AsteriskInstance
from testbed.sipp import SippPool

from .harness import Api, ControllerProcess, wait_for
from .test_dialer import (
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


def _events(log_file: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")
    ]


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
        await wait_for(
            lambda: _count(config, "SELECT COUNT(*) AS n FROM leads WHERE campaign = :c"
                           " AND state = 'done'", campaign, LEADS),
            150, "every lead to be done", every=1.0,
        )
        await wait_for(
            lambda: _count(config, "SELECT COUNT(*) AS n FROM attempts WHERE campaign = :c"
                           " AND state = 'dialing'", campaign, 0, at_least=False),
            30, "no attempt left open",
        )
        await acli(config_file, "campaign", "stop", name)
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
    events = _events(log_file)
    crash = [e for e in events if e["event"] == "faults.crashing"]
    assert [e["point"] for e in crash] == [point]
    # the dead controller's agent bridges were destroyed by the restarted one
    assert [e for e in events if e["event"] == "dialer.stale_agent_bridge"]
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


async def _count(
    config: Any, sql: str, params: dict[str, Any], wanted: int, at_least: bool = True
) -> bool:
    rows = await store_rows(config, sql, params)
    count = int(rows[0]["n"])
    return count >= wanted if at_least else count == wanted
