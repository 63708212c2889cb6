"""Per-agent numbers: intervals and calls (queue and campaign calls) clipped to the window, AHT,
occupancy, paused by reason; the status history and the calls in the store (each backend) and
``callctl agent stats``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.agents.gauges import AgentGaugeProvider
from controller.agents.machine import AgentStatus
from controller.agents.repository import StatusLogRepository
from controller.agents.stats import AgentStats, HandledCall, StatusInterval, agent_stats
from controller.api import agents as agents_api
from controller.cli.main import main
from controller.config import parse_config
from controller.dialer.leads import Lead
from controller.dialer.policy import Result
from controller.dialer.repository import AttemptTiming, DialerRepository
from controller.dialer.settings import AgentGroup, CampaignSettings, Disposition
from controller.inbound.repository import InboundCallRecord, InboundCallRepository
from controller.store import open_store
from controller.store.base import Database

from .api_support import serving

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
NOON_NY = datetime(2026, 3, 2, 17, tzinfo=UTC)
CAMPAIGN = CampaignSettings(trunk="trunk", caller_id="+12125550100",
                            agents=AgentGroup(agent_ids=("1001",)), agent_wrapup_seconds=30,
                            dispositions={"1": Disposition(name="sale")})


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_time_is_summed_inside_the_window_and_aht_and_occupancy_follow() -> None:
    intervals = [
        StatusInterval("1001", AgentStatus.AVAILABLE, "", at(-30), at(60)),  # clipped at 0
        StatusInterval("1001", AgentStatus.PAUSED, "lunch", at(60), at(90)),
        StatusInterval("1001", AgentStatus.PAUSED, "break", at(90), None),  # still paused
        StatusInterval("1002", AgentStatus.AVAILABLE, "", at(-60), at(-10)),  # before: out
    ]
    calls = [HandledCall("1001", at(10), at(14), 60.0, "resolved"),
             HandledCall("1001", at(20), at(26), 60.0),
             HandledCall("1001", at(-5), at(3), 0.0, "sale")]  # answered before the window
    [stats] = agent_stats(intervals, calls, since=T0, now=at(100))
    assert stats.dispositions == {"resolved": 1}
    assert (stats.agent_id, stats.calls_handled) == ("1001", 2)
    assert stats.talk_s == 600 and stats.wrapup_s == 120
    assert stats.logged_in_s == 100 * 60
    assert stats.paused_s == {"lunch": 1800, "break": 600}
    assert stats.aht_s == 360
    assert stats.occupancy == pytest.approx(720 / 3600)


def test_a_wrapup_ends_early_at_star47_or_at_the_agents_next_call() -> None:
    calls = [HandledCall("1001", at(10), at(14), 60.0),
             HandledCall("1001", at(14.5), at(16), 60.0),  # 30 s after the first ended
             HandledCall("1002", at(10), at(14), 60.0)]
    ends = [("1001", at(16.25)), ("1002", at(0))]  # 1002's *47 before its call: no cut
    stats = agent_stats([], calls, since=T0, now=at(100), wrapup_ends=ends)
    by_agent = {s.agent_id: s for s in stats}
    assert by_agent["1001"].wrapup_s == 30 + 15
    assert by_agent["1002"].wrapup_s == 60


def test_campaign_calls_count_beside_queue_calls_and_a_key_in_wrapup_ends_it() -> None:
    calls = [HandledCall("1001", at(10), at(14), 60.0, "resolved", at(14.5)),  # keyed at 30 s
             HandledCall("1001", at(20), at(22), 120.0, "sale", at(22.25), outbound=True),
             # the key 1 ms before the talk's end by the other clock: no wrap-up at all
             HandledCall("1001", at(30), at(31), 120.0, "sale",
                         at(31) - timedelta(milliseconds=1), outbound=True),
             HandledCall("1001", at(40), at(41), 120.0, outbound=True),  # no key: all of it
             HandledCall("1001", at(95), None, 120.0, outbound=True)]  # still talking
    [stats] = agent_stats([], calls, since=T0, now=at(100))
    assert (stats.calls_handled, stats.outbound_calls) == (5, 4)
    assert stats.dispositions == {"resolved": 1, "sale": 2}
    assert stats.talk_s == (4 + 2 + 1 + 1 + 5) * 60
    assert stats.wrapup_s == 30 + 15 + 0 + 120


async def test_the_early_wrapup_ends_are_stored_and_read_back(store: Database) -> None:
    history = StatusLogRepository(store)
    await history.record("1001", AgentStatus.AVAILABLE, "", at(0))
    await history.record_wrapup_end("1001", at(5))
    assert await history.wrapup_ends(at(1)) == [("1001", at(5))]
    assert await history.wrapup_ends(at(6)) == []


def test_an_agent_without_working_time_has_no_occupancy_or_aht() -> None:
    [stats] = agent_stats([StatusInterval("1003", AgentStatus.PAUSED, "", at(0), at(10))], [],
                          since=T0, now=at(10))
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
            await one_campaign_call(store, "1001", now - timedelta(minutes=80), talk_s=60.0)
        finally:
            await store.close()

    asyncio.run(two_hours_logged_in_one_paused())
    since = (now - timedelta(hours=3)).isoformat()
    assert main(["--config", str(config), "agent", "stats", "--since", since, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)["agents"]
    assert row["agent"] == "1001" and (row["calls"], row["outbound"]) == (4, 1)
    assert row["dispositions"] == {"resolved": 2, "sale": 1}
    assert row["talk_s"] == 3 * 120 + 60
    assert 7190 < row["logged_in_s"] < 7300 and 3590 < row["paused_s"]["training"] < 3700
    assert main(["--config", str(config), "agent", "stats"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["agent", "calls", "outbound", "aht_s",
                                             "logged_in_s", "talk_s", "wrapup_s", "paused_s",
                                             "occupancy", "dispositions"]
    assert "training=" in table and table.splitlines()[1].endswith(" resolved=2 sale=1")
    with pytest.raises(SystemExit) as bad:
        main(["--config", str(config), "agent", "stats", "--since", "yesterday"])
    assert bad.value.code == 2


async def one_campaign_call(store: Database, agent_id: str, connected: datetime, *,
                            talk_s: float | None) -> str:
    """A ``sales`` campaign call ``agent_id`` took at ``connected``, talked ``talk_s`` (None:
    no talk time measured) and keyed ``sale`` on 5 s into its 30 s wrap-up; its result is
    written 10 minutes after the hang-up (the store was down)."""
    repo = DialerRepository(store)
    await repo.create_campaign("sales", CAMPAIGN, connected)
    await repo.change_state("sales", "start", connected)
    await repo.import_leads("sales", [Lead("+12125550101", timezone="America/New_York")],
                            connected)
    # claimed at noon in the lead's zone whatever the time now: the stats read the connect
    [attempt] = await repo.claim("sales", 1, "w1", NOON_NY)
    await repo.record_connected(attempt.attempt_id, agent_id, connected)
    hung_up = connected + timedelta(seconds=talk_s or 0.0)
    timing = AttemptTiming(answered_at=connected, talk_seconds=talk_s)
    await repo.record_result(attempt.attempt_id, Result.HUMAN, hung_up + timedelta(minutes=10),
                             cause=16, timing=timing)
    [sale] = CAMPAIGN.dispositions.values()
    await repo.record_disposition(attempt.attempt_id, sale, agent_id,
                                  hung_up + timedelta(seconds=5))
    return attempt.attempt_id


async def test_a_campaign_call_counts_from_its_connect_with_the_campaigns_wrapup(
    store: Database
) -> None:
    history = StatusLogRepository(store)
    await history.record("1001", AgentStatus.AVAILABLE, "", at(0))
    await one_campaign_call(store, "1001", at(10), talk_s=90.0)
    [stats] = await history.stats({}, since=T0, now=at(60))
    assert (stats.calls_handled, stats.outbound_calls) == (1, 1)
    # talk from the measured time (not to the late result), wrap-up to the key
    assert (stats.talk_s, stats.wrapup_s) == (90.0, 5.0)
    assert stats.dispositions == {"sale": 1}
    assert await history.stats({}, since=at(11), now=at(60)) == [
        AgentStats("1001", logged_in_s=49 * 60)]
    # one campaign's calls (what a restart reads to resume a wrap-up)
    repo = DialerRepository(store)
    assert [c.agent_id for c in await repo.connected_calls(T0, "sales")] == ["1001"]
    assert await repo.connected_calls(T0, "other") == []


async def test_the_api_gives_what_the_cli_prints_and_names_a_bad_since(store: Database) -> None:
    now = datetime.now(UTC)
    await StatusLogRepository(store).record("1001", AgentStatus.AVAILABLE, "",
                                            now - timedelta(hours=2))
    await one_campaign_call(store, "1001", now - timedelta(minutes=30), talk_s=90.0)
    config = parse_config({"http": {"api_token": "t"}, "ami": {"username": "u", "secret": "s"},
                           "ari": {"username": "u", "password": "p"}})
    async with serving(config, store, agents_api.add_routes) as client:
        response = await client.get("/api/v1/agents/stats")  # a read: no token
        assert response.status == 200
        [row] = (await response.json())["agents"]
        since = (now - timedelta(minutes=10)).isoformat()
        later = await (await client.get("/api/v1/agents/stats", params={"since": since})).json()
        bad = await client.get("/api/v1/agents/stats", params={"since": "yesterday"})
        assert bad.status == 400
        assert "since" in (await bad.json())["error"]
    assert (row["agent"], row["calls"], row["outbound"], row["talk_s"], row["wrapup_s"]) == (
        "1001", 1, 1, 90, 5)
    assert row["dispositions"] == {"sale": 1}
    assert 7190 < row["logged_in_s"] < 7300
    # from 10 minutes ago: the call of 30 minutes ago is not in it
    assert [(r["calls"], 590 < r["logged_in_s"] < 700) for r in later["agents"]] == [(0, True)]


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
