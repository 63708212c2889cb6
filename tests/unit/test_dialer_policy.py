"""Dialing policy: calling windows in the lead's zone, retries, gaps, classification, claims."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.dialer.leads import Lead
from controller.dialer.pacing import PacingStats
from controller.dialer.policy import (
    InvalidTransition,
    LeadSnapshot,
    Result,
    campaign_transition,
    classify_hangup,
    may_dial,
    next_attempt_at,
)
from controller.dialer.repository import AttemptTiming, DialerRepository, DialerStoreError
from controller.dialer.runner import replay_history
from controller.dialer.settings import AgentGroup, CampaignSettings
from controller.store import open_store
from controller.store.base import Database, from_iso

NEW_YORK = ZoneInfo("America/New_York")
SETTINGS = CampaignSettings(
    trunk="trunk", caller_id="+12125550100", agents=AgentGroup(queue="sales")
)


def at_local(zone: str, hour: int, minute: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def lead(**fields: Any) -> LeadSnapshot:
    return dataclasses.replace(
        LeadSnapshot(phone="+12125550101", timezone="America/New_York"), **fields
    )


def test_new_york_number_is_not_dialed_at_eight_new_york_time() -> None:
    decision = may_dial(lead(), SETTINGS, at_local("America/New_York", 8))
    assert not decision.allowed
    assert decision.reason == "outside calling hours in the lead's local time"
    assert decision.not_before == at_local("America/New_York", 9)


def test_same_instant_is_inside_hours_for_a_london_lead() -> None:
    now = at_local("America/New_York", 8)  # 13:00 in London
    assert may_dial(lead(timezone="Europe/London"), SETTINGS, now).allowed
    assert not may_dial(lead(timezone="America/Los_Angeles"), SETTINGS, now).allowed


def test_after_end_of_hours_waits_for_tomorrow_morning() -> None:
    decision = may_dial(lead(), SETTINGS, at_local("America/New_York", 21))
    assert decision.not_before == at_local("America/New_York", 9, day=3)


def test_window_respects_dst_change() -> None:
    # US clocks go forward on 2026-03-08; 09:00 local is 14:00 UTC before and 13:00 UTC after
    sunday_night = at_local("America/New_York", 22, day=7)
    decision = may_dial(lead(), SETTINGS, sunday_night)
    assert decision.not_before == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_unknown_or_missing_zone_is_never_dialed() -> None:
    now = at_local("America/New_York", 12)
    for zone in (None, "", "Not/AZone"):
        decision = may_dial(lead(timezone=zone), SETTINGS, now)
        assert (decision.allowed, decision.not_before) == (False, None)
        assert "timezone" in decision.reason


def test_dnc_finished_and_exhausted_leads_are_never_dialed() -> None:
    now = at_local("America/New_York", 12)
    assert may_dial(lead(on_dnc=True), SETTINGS, now).reason == "on the do-not-call list"
    assert may_dial(lead(finished=True), SETTINGS, now).reason == "finished"
    exhausted = may_dial(lead(attempts=3), SETTINGS, now)
    assert (exhausted.allowed, exhausted.not_before) == (False, None)
    assert "no attempts left" in exhausted.reason


def test_retry_delay_then_window() -> None:
    now = at_local("America/New_York", 20, 30)
    retry = now + timedelta(minutes=60)  # 21:30 local: past the window
    decision = may_dial(lead(next_attempt_at=retry), SETTINGS, now)
    assert decision.reason == "retry delay"
    assert decision.not_before == at_local("America/New_York", 9, day=3)


def test_abandoned_number_waits_72_hours() -> None:
    abandoned = at_local("America/New_York", 12)
    blocked = may_dial(lead(last_abandoned_at=abandoned), SETTINGS, abandoned + timedelta(hours=71))
    assert blocked.reason == "re-call gap after an abandoned call"
    assert blocked.not_before == abandoned + timedelta(hours=72)
    assert may_dial(lead(last_abandoned_at=abandoned), SETTINGS,
                    abandoned + timedelta(hours=72)).allowed


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
       st.sampled_from(["America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata"]))
def test_allowed_or_next_time_is_inside_the_local_window(naive: datetime, zone: str) -> None:
    now = naive.replace(tzinfo=UTC)
    decision = may_dial(lead(timezone=zone), SETTINGS, now)
    moment = now if decision.allowed else decision.not_before
    assert moment is not None and moment >= now
    local = moment.astimezone(ZoneInfo(zone)).time()
    assert SETTINGS.calling_hours.start <= local < SETTINGS.calling_hours.end
    assert moment - now < timedelta(hours=25)


@pytest.mark.parametrize(
    ("cause", "disposition", "answered", "machine", "agent", "expected"),
    [
        (16, "ANSWERED", True, False, True, Result.HUMAN),
        (16, None, True, True, True, Result.MACHINE),
        (16, None, True, False, False, Result.ABANDONED),
        (16, None, False, False, True, Result.NO_ANSWER),
        (17, None, False, False, True, Result.BUSY),
        (21, None, False, False, True, Result.BUSY),
        (18, None, False, False, True, Result.NO_ANSWER),
        (19, None, False, False, True, Result.NO_ANSWER),
        (1, None, False, False, True, Result.FAILED),
        (3, None, False, False, True, Result.FAILED),
        (27, None, False, False, True, Result.FAILED),
        (34, None, False, False, True, Result.FAILED),
        (38, None, False, False, True, Result.FAILED),
        (None, "BUSY", False, False, True, Result.BUSY),
        (0, "NO ANSWER", False, False, True, Result.NO_ANSWER),
        (None, "CONGESTION", False, False, True, Result.FAILED),
        (None, "ANSWERED", False, False, True, Result.HUMAN),
        (None, None, False, False, True, Result.FAILED),
    ],
)
def test_classification_table(
    cause: int | None, disposition: str | None, answered: bool, machine: bool, agent: bool,
    expected: Result,
) -> None:
    assert classify_hangup(
        cause, disposition, answered=answered, machine=machine, agent_connected=agent
    ) is expected


def test_retry_delay_per_result_and_max_attempts() -> None:
    now = datetime(2026, 3, 2, 15, tzinfo=UTC)
    delays = {Result.BUSY: 10, Result.NO_ANSWER: 60, Result.MACHINE: 240, Result.FAILED: 30}
    for result, minutes in delays.items():
        assert next_attempt_at(result, 1, SETTINGS, now) == now + timedelta(minutes=minutes)
    assert next_attempt_at(Result.ABANDONED, 1, SETTINGS, now) == now + timedelta(hours=72)
    assert next_attempt_at(Result.HUMAN, 1, SETTINGS, now) is None
    assert next_attempt_at(Result.BUSY, 3, SETTINGS, now) is None  # max_attempts = 3


def test_machine_with_message_left_is_final() -> None:
    settings = SETTINGS.model_copy(update={"amd": SETTINGS.amd.model_copy(
        update={"enabled": True, "action": "leave_message", "message_sound": "msg"})})
    now = datetime(2026, 3, 2, 15, tzinfo=UTC)
    assert next_attempt_at(Result.MACHINE, 1, settings, now) is None


def test_campaign_transitions() -> None:
    assert campaign_transition("created", "start") == "running"
    assert campaign_transition("running", "pause") == "paused"
    assert campaign_transition("paused", "resume") == "running"
    assert campaign_transition("paused", "stop") == "stopped"
    for current, action in [("running", "resume"), ("created", "pause"), ("stopped", "start"),
                            ("stopped", "stop")]:
        with pytest.raises(InvalidTransition, match=f"cannot {action} a {current}"):
            campaign_transition(current, action)


# --- claims against the store ------------------------------------------------------------------

NOON_NY = at_local("America/New_York", 12)


@pytest.fixture
async def repo(store: Database) -> AsyncIterator[DialerRepository]:
    repository = DialerRepository(store)
    await repository.create_campaign("demo", SETTINGS, NOON_NY)
    await repository.change_state("demo", "start", NOON_NY)
    yield repository


async def add_leads(repo: DialerRepository, *leads: tuple[str, str | None]) -> None:
    await repo.import_leads("demo", [Lead(phone, timezone=zone) for phone, zone in leads], NOON_NY)


async def test_claim_writes_attempts_and_parks_leads_outside_hours(
    repo: DialerRepository,
) -> None:
    await add_leads(repo, ("+12125550101", "America/New_York"),
                    ("+13105550101", "America/Los_Angeles"), ("+18005550199", None))
    early = at_local("America/New_York", 11)  # 08:00 in Los Angeles
    claimed = await repo.claim("demo", 5, "w1", early)
    assert [a.phone for a in claimed] == ["+12125550101"]
    assert [a.attempt_id for a in await repo.open_attempts("demo")] == [claimed[0].attempt_id]
    rows = {row["phone"]: row async for row in repo.export_rows("demo")}
    parked = at_local("America/Los_Angeles", 9).isoformat(timespec="microseconds")
    assert rows["+13105550101"]["next_attempt_at"] == parked
    assert await repo.claim("demo", 5, "w1", early + timedelta(minutes=59)) == []
    later = await repo.claim("demo", 5, "w1", NOON_NY)  # 09:00 in Los Angeles
    assert [a.phone for a in later] == ["+13105550101"]
    assert rows["+18005550199"]["lead_state"] == "ready"  # no zone: never claimed


async def test_a_claimed_lead_is_not_claimed_twice(repo: DialerRepository) -> None:
    await add_leads(repo, ("+12125550101", "America/New_York"),
                    ("+12125550102", "America/New_York"))
    first = await repo.claim("demo", 1, "w1", NOON_NY)
    second = await repo.claim("demo", 5, "w2", NOON_NY)
    assert len(first) == len(second) == 1
    assert first[0].phone != second[0].phone
    assert await repo.claim("demo", 5, "w3", NOON_NY) == []


async def test_a_lead_claimed_and_settled_since_the_claim_read_it_is_passed_over(
    repo: DialerRepository, store: Database
) -> None:
    """On PostgreSQL a claim reads the due leads, then takes them one by one; meanwhile
    another worker may claim one, dial it and record a busy (back to ``ready``, due again in
    10 minutes). Taken on the old read, it would be dialed at once, inside its retry delay."""
    await add_leads(repo, ("+12125550101", "America/New_York"))
    read = await store.fetchone(
        "SELECT phone, name, timezone, custom_json, attempts, next_attempt_at,"
        " last_abandoned_at FROM leads WHERE campaign = 'demo'", {})
    assert read is not None
    [other] = await repo.claim("demo", 1, "w2", NOON_NY)
    await repo.record_result(other.attempt_id, Result.BUSY, NOON_NY, cause=17)
    async with store.transaction() as conn:
        assert await repo._claim_one(conn, "demo", read, "w1:token", "w1", NOON_NY) is None
    assert await repo.open_attempts("demo") == []
    [retry] = await repo.claim("demo", 1, "w1", NOON_NY + timedelta(minutes=10))
    assert retry.attempt_no == 2


async def test_a_lead_settled_since_the_claim_read_it_is_not_parked_on_the_old_read(
    repo: DialerRepository, store: Database
) -> None:
    """The same race for a lead the claim found outside calling hours: parking it until the
    opening on the old read would undo the retry delay another worker's result set since."""
    await add_leads(repo, ("+12125550101", "America/New_York"))
    read = await store.fetchone(
        "SELECT phone, attempts, next_attempt_at FROM leads WHERE campaign = 'demo'", {})
    assert read is not None
    [other] = await repo.claim("demo", 1, "w2", NOON_NY)
    retry = await repo.record_result(other.attempt_id, Result.MACHINE, NOON_NY)
    async with store.transaction() as conn:
        await repo._park(conn, "demo", read, NOON_NY + timedelta(minutes=5))
    lead = await store.fetchone("SELECT next_attempt_at FROM leads WHERE campaign = 'demo'", {})
    assert lead is not None and retry is not None
    assert from_iso(lead["next_attempt_at"]) == retry


async def test_result_schedules_retry_until_attempts_run_out(repo: DialerRepository) -> None:
    await add_leads(repo, ("+12125550101", "America/New_York"))
    now = NOON_NY
    for attempt_no in (1, 2, 3):
        [attempt] = await repo.claim("demo", 1, "w1", now)
        assert attempt.attempt_no == attempt_no
        retry = await repo.record_result(attempt.attempt_id, Result.BUSY, now, cause=17)
        assert await repo.claim("demo", 1, "w1", now) == []  # retry delay
        if attempt_no < 3:
            assert retry == now + timedelta(minutes=10)
            now = retry
        else:
            assert retry is None
    later = now + timedelta(days=1)
    assert await repo.claim("demo", 1, "w1", later) == []
    status = await repo.status("demo", now)
    assert status["leads"]["done"] == 1
    assert status["attempts"] == {"open": 0, "busy": 3}


async def test_abandon_rate_and_gap(repo: DialerRepository) -> None:
    await add_leads(repo, ("+12125550101", "America/New_York"),
                    ("+12125550102", "America/New_York"))
    a, b = await repo.claim("demo", 2, "w1", NOON_NY)
    await repo.record_result(a.attempt_id, Result.HUMAN, NOON_NY, cause=16)
    retry = await repo.record_result(b.attempt_id, Result.ABANDONED, NOON_NY, cause=16)
    assert retry == NOON_NY + timedelta(hours=72)
    status = await repo.status("demo", NOON_NY)
    assert status["abandon_percent"] == {"24h": 50.0, "720h": 50.0}
    assert await repo.claim("demo", 2, "w1", NOON_NY + timedelta(hours=71)) == []
    [again] = await repo.claim("demo", 2, "w1", NOON_NY + timedelta(hours=72))
    assert again.phone == b.phone


async def test_status_percentages_and_gauge_ratios_are_one_count(repo: DialerRepository) -> None:
    await add_leads(repo, *((f"+1212555010{n}", "America/New_York") for n in range(4)))
    assert (await repo.status("demo", NOON_NY))["abandon_percent"] == {"24h": None, "720h": None}
    assert await repo.abandon_ratios("demo", NOON_NY) == {"1h": 0.0, "24h": 0.0, "30d": 0.0}
    first, second, third, fourth = await repo.claim("demo", 4, "w1", NOON_NY)
    later = NOON_NY + timedelta(hours=2)
    await repo.record_result(first.attempt_id, Result.HUMAN, NOON_NY)
    await repo.record_result(second.attempt_id, Result.ABANDONED, NOON_NY)
    await repo.record_result(third.attempt_id, Result.HUMAN, later)
    await repo.record_result(fourth.attempt_id, Result.MACHINE, later)  # not answered live
    now = later + timedelta(minutes=30)
    assert await repo.abandon_ratios("demo", now) == pytest.approx(
        {"1h": 0.0, "24h": 1 / 3, "30d": 1 / 3}
    )
    assert (await repo.status("demo", now))["abandon_percent"] == {"24h": 33.33, "720h": 33.33}


async def test_closing_an_attempt_twice_is_refused(repo: DialerRepository) -> None:
    await add_leads(repo, ("+12125550101", "America/New_York"))
    [attempt] = await repo.claim("demo", 1, "w1", NOON_NY)
    await repo.record_result(attempt.attempt_id, Result.HUMAN, NOON_NY)
    with pytest.raises(DialerStoreError, match="no open attempt"):
        await repo.record_result(attempt.attempt_id, Result.HUMAN, NOON_NY)
    assert await repo.open_attempts() == []


async def test_nothing_is_claimed_unless_the_campaign_runs(repo: DialerRepository) -> None:
    await add_leads(repo, ("+12125550101", "America/New_York"))
    await repo.change_state("demo", "pause", NOON_NY)
    assert await repo.claim("demo", 1, "w1", NOON_NY) == []
    await repo.change_state("demo", "resume", NOON_NY)
    assert len(await repo.claim("demo", 1, "w1", NOON_NY)) == 1


async def test_two_workers_on_separate_connections_never_share_a_lead(
    repo: DialerRepository, store_url: str
) -> None:
    phones = [f"+1212555{n:04d}" for n in range(100, 160)]
    await add_leads(repo, *[(phone, "America/New_York") for phone in phones])
    other_db = await open_store(store_url)
    claimed: list[str] = []
    try:
        other = DialerRepository(other_db)
        # rounds of twelve claims at once, until one claims nothing: a claim passes over leads
        # another claim in flight holds (PostgreSQL: SKIP LOCKED), so one round may leave some
        # for the next, as the dialer's next tick would
        while batches := [
            batch for batch in await asyncio.gather(
                *[worker.claim("demo", 7, name, NOON_NY)
                  for _ in range(6) for name, worker in (("w1", repo), ("w2", other))])
            if batch
        ]:
            claimed += [attempt.phone for batch in batches for attempt in batch]
    finally:
        await other_db.close()
    assert len(claimed) == len(set(claimed)) == 60
    assert len(await repo.open_attempts("demo")) == 60


async def test_a_claim_passes_over_leads_another_worker_holds_instead_of_waiting(
    repo: DialerRepository, store_url: str
) -> None:
    """PostgreSQL: a claim's scan locks its leads FOR UPDATE SKIP LOCKED. Another worker's
    claim in flight holds its leads (here, a transaction holding the first four); this claim
    takes the next ones at once. Without SKIP LOCKED it would wait on the first held lead."""
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite locks the whole store per transaction: no row is held alone")
    phones = [f"+1212555{n:04d}" for n in range(200, 210)]
    await add_leads(repo, *[(phone, "America/New_York") for phone in phones])
    holder = await open_store(store_url)
    try:
        async with holder.transaction() as conn:
            held = {row["phone"] for row in await conn.fetchall(
                "SELECT phone FROM leads WHERE campaign = 'demo'"
                " ORDER BY next_attempt_at, phone LIMIT 4 FOR UPDATE")}
            claimed = await asyncio.wait_for(repo.claim("demo", 3, "w1", NOON_NY), 5)
    finally:
        await holder.close()
    assert held == set(phones[:4])
    assert [attempt.phone for attempt in claimed] == phones[4:7]


async def test_pacing_history_survives_a_restart_as_it_was_learned(
    repo: DialerRepository,
) -> None:
    """A restarted runner replays the store's finished attempts: same history, same rates."""
    phones = [f"+1212555{n:04d}" for n in range(1, 5)]
    await add_leads(repo, *((phone, "America/New_York") for phone in phones))
    claimed = sorted(await repo.claim("demo", 4, "w1", NOON_NY), key=lambda a: a.phone)
    answered = NOON_NY + timedelta(seconds=12)
    outcomes = [  # result, timing, ended seconds after launch
        (Result.HUMAN, AttemptTiming(answered, 95.0), 107),
        (Result.NO_ANSWER, AttemptTiming(), 30),
        (Result.HUMAN, AttemptTiming(answered, 40.0), 52),
        (Result.ABANDONED, AttemptTiming(answered), 15),
    ]
    for attempt, (result, timing, ended_s) in zip(claimed, outcomes, strict=True):
        await repo.record_result(attempt.attempt_id, result, NOON_NY + timedelta(seconds=ended_s),
                                 timing=timing)

    history = await repo.pacing_history("demo", 1000)
    assert [h.talk_seconds for h in history] == [None, None, 40.0, 95.0]  # oldest first
    assert [h.answered_at for h in history] == [answered, None, answered, answered]

    replayed = PacingStats()
    replay_history(replayed, history, wrapup_s=5)
    # two finished talks; three of four attempts needed an agent (the abandon did too)
    assert (replayed.attempts, replayed.mean_talk, replayed.connect_rate) == (4, 67.5, 0.75)
    assert await repo.pacing_history("demo", 2) == history[-2:]
