"""Per-agent numbers: intervals and calls clipped to the window, AHT, occupancy, paused by
reason; the status history in the store (each backend) and ``callctl agent stats``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.agents.gauges import AgentGaugeProvider
from controller.agents.machine import AgentStatus
from controller.agents.repository import StatusLogRepository
from controller.agents.stats import HandledCall, StatusInterval, agent_stats
from controller.cli.main import main
from controller.config import parse_config
from controller.inbound.repository import InboundCallRecord, InboundCallRepository
from controller.store import open_store
from controller.store.base import Database

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_time_is_summed_inside_the_window_and_aht_and_occupancy_follow() -> None:
    intervals = [
        StatusInterval("1001", AgentStatus.AVAILABLE, "", at(-30), at(60)),  # clipped at 0
        StatusInterval("1001", AgentStatus.PAUSED, "lunch", at(60), at(90)),
        StatusInterval("1001", AgentStatus.PAUSED, "break", at(90), None),  # still paused
        StatusInterval("1002", AgentStatus.AVAILABLE, "", at(-60), at(-10)),  # before: out
    ]
    calls = [HandledCall("1001", "support", at(10), at(14), "resolved"),
             HandledCall("1001", "support", at(20), at(26)),
             HandledCall("1001", "sales", at(-5), at(3), "sale")]  # answered before the window
    [stats] = agent_stats(intervals, calls, {"support": 60.0}, since=T0, now=at(100))
    assert stats.dispositions == {"resolved": 1}
    assert (stats.agent_id, stats.calls_handled) == ("1001", 2)
    assert stats.talk_s == 600 and stats.wrapup_s == 120
    assert stats.logged_in_s == 100 * 60
    assert stats.paused_s == {"lunch": 1800, "break": 600}
    assert stats.aht_s == 360
    assert stats.occupancy == pytest.approx(720 / 3600)


def test_a_wrapup_ends_early_at_star47_or_at_the_agents_next_call() -> None:
    calls = [HandledCall("1001", "support", at(10), at(14)),
             HandledCall("1001", "support", at(14.5), at(16)),  # 30 s after the first ended
             HandledCall("1002", "support", at(10), at(14))]
    ends = [("1001", at(16.25)), ("1002", at(0))]  # 1002's *47 before its call: no cut
    stats = agent_stats([], calls, {"support": 60.0}, since=T0, now=at(100), wrapup_ends=ends)
    by_agent = {s.agent_id: s for s in stats}
    assert by_agent["1001"].wrapup_s == 30 + 15
    assert by_agent["1002"].wrapup_s == 60


async def test_the_early_wrapup_ends_are_stored_and_read_back(store: Database) -> None:
    history = StatusLogRepository(store)
    await history.record("1001", AgentStatus.AVAILABLE, "", at(0))
    await history.record_wrapup_end("1001", at(5))
    assert await history.wrapup_ends(at(1)) == [("1001", at(5))]
    assert await history.wrapup_ends(at(6)) == []


def test_an_agent_without_working_time_has_no_occupancy_or_aht() -> None:
    [stats] = agent_stats([StatusInterval("1003", AgentStatus.PAUSED, "", at(0), at(10))], [],
                          {}, since=T0, now=at(10))
    assert (stats.occupancy, stats.aht_s, stats.paused_s) == (None, None, {"": 600})


async def test_the_history_closes_each_interval_as_the_next_begins(store: Database) -> None:
    history = StatusLogRepository(store)
    await history.record("1001", AgentStatus.AVAILABLE, "", at(0))
    await history.record("1001", AgentStatus.PAUSED, "lunch", at(30))
    await history.record("1001", AgentStatus.LOGGED_OUT, "", at(40))
    found = await history.intervals(at(-60))
    assert [(i.status, i.reason, i.started_at, i.ended_at) for i in found] == [
        (AgentStatus.AVAILABLE, "", at(0), at(30)), (AgentStatus.PAUSED, "lunch", at(30), at(40))]
    assert await history.intervals(at(41)) == []


def test_agent_stats_prints_a_table_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "callctl.db"
    config = tmp_path / "controller.toml"
    config.write_text(f'[http]\napi_token = "t"\n[ami]\nusername = "u"\nsecret = "s"\n'
                      f'[ari]\nusername = "u"\npassword = "p"\n[store]\nurl = "sqlite:///{db}"\n')
    now = datetime.now(UTC)

    async def two_hours_logged_in_one_paused() -> None:
        store = await open_store(f"sqlite:///{db}")
        try:
            history = StatusLogRepository(store)
            await history.record("1001", AgentStatus.AVAILABLE, "", now - timedelta(hours=2))
            await history.record("1001", AgentStatus.PAUSED, "training",
                                 now - timedelta(hours=1))
            calls = InboundCallRepository(store)
            for call_id, disposition in [("c1", "resolved"), ("c2", "resolved"), ("c3", None)]:
                answered = now - timedelta(minutes=90)
                await calls.save_ended(InboundCallRecord(
                    call_id, f"PJSIP/trunk-{call_id}", "5000", "+15550199", answered, "support",
                    answered, answered, answered + timedelta(minutes=2), "answered", "1001"))
                if disposition:
                    await calls.record_disposition(call_id, disposition, "1001", now)
        finally:
            await store.close()

    asyncio.run(two_hours_logged_in_one_paused())
    since = (now - timedelta(hours=3)).isoformat()
    assert main(["--config", str(config), "agent", "stats", "--since", since, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)["agents"]
    assert row["agent"] == "1001" and row["calls"] == 3
    assert row["dispositions"] == {"resolved": 2}
    assert 7190 < row["logged_in_s"] < 7300 and 3590 < row["paused_s"]["training"] < 3700
    assert main(["--config", str(config), "agent", "stats"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["agent", "calls", "aht_s", "logged_in_s", "talk_s",
                                             "wrapup_s", "paused_s", "occupancy",
                                             "dispositions"]
    assert "training=" in table and table.splitlines()[1].endswith(" resolved=2")
    with pytest.raises(SystemExit) as bad:
        main(["--config", str(config), "agent", "stats", "--since", "yesterday"])
    assert bad.value.code == 2


async def test_the_gauges_give_every_agent_every_reason_over_the_window(store: Database) -> None:
    history = StatusLogRepository(store)
    await history.record("1001", AgentStatus.AVAILABLE, "", at(0))
    await history.record("1001", AgentStatus.PAUSED, "lunch", at(50))
    config = parse_config({"http": {"api_token": "t"}, "ami": {"username": "u", "secret": "s"},
                           "ari": {"username": "u", "password": "p"}})
    provider = AgentGaugeProvider(store, config, 3600, lambda: at(60))
    [gauges] = await provider()
    assert gauges.agent == "1001" and gauges.calls_handled == 0
    assert gauges.seconds_by_activity == {"logged_in": 3600.0, "talking": 0.0, "wrapup": 0.0,
                                          "paused": 600.0}
    assert gauges.paused_by_reason == {"": 0.0, "break": 0.0, "lunch": 600.0, "missed": 0.0,
                                       "training": 0.0}
    assert gauges.occupancy_ratio == 0.0
