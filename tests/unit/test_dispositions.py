"""Agent dispositions: the settings that name them, and what the store does with one, whether
it lands before or after the call's result (two writes, either order)."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import UTC, datetime, timedelta

import pytest

from controller.config import ConfigError
from controller.dialer.leads import Lead
from controller.dialer.policy import Result
from controller.dialer.repository import (
    GLOBAL_DNC,
    ClaimedAttempt,
    DialerRepository,
    DialerStoreError,
    DisposedLead,
)
from controller.dialer.settings import (
    AgentGroup,
    CampaignSettings,
    Disposition,
    parse_campaign_settings,
    settings_toml,
)
from controller.store import open_store
from controller.store.base import Database, from_iso, to_iso

NOON_NY = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
PHONE = "+12125550101"
SETTINGS = CampaignSettings(
    trunk="trunk", caller_id="+12125550100", agents=AgentGroup(queue="sales"), max_attempts=2
)
SALE = Disposition(name="sale")
CALL_AGAIN = Disposition(name="call-again", lead="retry", retry_minutes=90)
DO_NOT_CALL = Disposition(name="do-not-call", lead="dnc")
BASE = {"trunk": "t", "caller_id": "c", "agents": {"queue": "q"}}


@pytest.mark.parametrize(
    ("dispositions", "problem"),
    [
        ({"x": {"name": "sale"}}, "dispositions.x: Value error, a disposition key is one digit"),
        ({"10": {"name": "sale"}}, "a disposition key is one digit, 0 to 9, not '10'"),
        ({"1": {"name": "Sale Made"}}, "dispositions.1.name: String should match pattern"),
        ({"1": {"name": "sale", "lead": "later"}}, "dispositions.1.lead: Input should be"),
        ({"1": {"name": "sale"}, "2": {"name": "sale"}},
         "a disposition name is on more than one key: sale"),
        ({"1": {"name": "sale", "retry_minutes": -1}}, "dispositions.1.retry_minutes"),
    ],
)
def test_bad_dispositions_are_refused_naming_the_key(
    dispositions: dict[str, object], problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_campaign_settings({**BASE, "dispositions": dispositions}, "sales.toml")
    assert problem in str(raised.value) and "sales.toml" in str(raised.value)


def test_dispositions_default_to_none_and_keep_their_order() -> None:
    assert parse_campaign_settings(BASE).dispositions == {}
    settings = parse_campaign_settings(
        {**BASE, "dispositions": {"9": {"name": "dnc", "lead": "dnc"}, "1": {"name": "sale"}}}
    )
    assert settings.dispositions == {"9": Disposition(name="dnc", lead="dnc"), "1": SALE}


async def answered_call(store: Database, settings: CampaignSettings = SETTINGS) -> tuple[
    DialerRepository, ClaimedAttempt
]:
    repo = DialerRepository(store)
    for name in ("demo", "other"):
        await repo.create_campaign(name, settings, NOON_NY)
        await repo.change_state(name, "start", NOON_NY)
        await repo.import_leads(name, [Lead(PHONE, timezone="America/New_York")], NOON_NY)
    [attempt] = await repo.claim("demo", 1, "w1", NOON_NY)
    return repo, attempt


async def lead_of(store: Database, campaign: str = "demo") -> tuple[str, str]:
    row = await store.fetchone(
        "SELECT state, next_attempt_at FROM leads WHERE campaign = :c", {"c": campaign}
    )
    assert row is not None
    return row["state"], row["next_attempt_at"]


async def disposed(
    repo: DialerRepository, attempt: ClaimedAttempt, disposition: Disposition, *, first: bool
) -> DisposedLead:
    """The call's result and its disposition stored, the disposition ``first`` or second."""
    ended, keyed = NOON_NY + timedelta(minutes=3), NOON_NY + timedelta(minutes=3, seconds=4)
    if first:
        pending = await repo.record_disposition(attempt.attempt_id, disposition, "1001", keyed)
        assert pending == DisposedLead("pending")
        await repo.record_result(attempt.attempt_id, Result.HUMAN, ended, cause=16)
        return DisposedLead("pending")
    await repo.record_result(attempt.attempt_id, Result.HUMAN, ended, cause=16)
    return await repo.record_disposition(attempt.attempt_id, disposition, "1001", keyed)


@pytest.mark.parametrize("first", [False, True], ids=["after-result", "before-result"])
async def test_a_sale_finishes_the_lead_and_is_counted_by_name(
    store: Database, first: bool
) -> None:
    repo, attempt = await answered_call(store)
    outcome = await disposed(repo, attempt, SALE, first=first)
    assert outcome in (DisposedLead("pending"), DisposedLead("done"))
    assert await lead_of(store) == ("done", "")
    row = await store.fetchone(
        "SELECT result, disposition, disposed_by FROM attempts WHERE attempt_id = :id",
        {"id": attempt.attempt_id},
    )
    assert row is not None and dict(row) == {
        "result": "human", "disposition": "sale", "disposed_by": "1001"
    }
    status = await repo.status("demo", NOON_NY + timedelta(hours=1))
    assert status["dispositions"] == {"sale": 1}


@pytest.mark.parametrize("first", [False, True], ids=["after-result", "before-result"])
async def test_call_again_dials_the_lead_again_after_its_minutes(
    store: Database, first: bool
) -> None:
    repo, attempt = await answered_call(store)
    outcome = await disposed(repo, attempt, CALL_AGAIN, first=first)
    due = NOON_NY + timedelta(minutes=3, seconds=4) + timedelta(minutes=90)
    if not first:
        assert outcome == DisposedLead("ready", due)
    assert (await lead_of(store))[0] == "ready"
    assert await repo.claim("demo", 1, "w1", due - timedelta(seconds=1)) == []
    [again] = await repo.claim("demo", 1, "w1", due)
    assert again.attempt_no == 2
    # its last attempt: asked for again, it is finished all the same
    await disposed(repo, again, CALL_AGAIN, first=first)
    assert await lead_of(store) == ("done", "")


@pytest.mark.parametrize("first", [False, True], ids=["after-result", "before-result"])
async def test_do_not_call_lists_the_number_for_every_campaign(
    store: Database, first: bool
) -> None:
    repo, attempt = await answered_call(store)
    await disposed(repo, attempt, DO_NOT_CALL, first=first)
    assert await lead_of(store) == ("done", "")
    [listed] = await repo.list_dnc(GLOBAL_DNC)
    assert (listed["phone"], listed["source"]) == (PHONE, "disposition do-not-call by agent 1001")
    assert await repo.claim("other", 1, "w1", NOON_NY) == []  # the customer asked: nobody calls


async def test_a_disposition_lands_once_and_needs_a_known_attempt(store: Database) -> None:
    repo, attempt = await answered_call(store)
    await disposed(repo, attempt, SALE, first=False)
    again = await repo.record_disposition(attempt.attempt_id, DO_NOT_CALL, "1002", NOON_NY)
    assert again == DisposedLead("done")
    assert await repo.list_dnc(GLOBAL_DNC) == []
    status = await repo.status("demo", NOON_NY + timedelta(hours=1))
    assert status["dispositions"] == {"sale": 1}
    with pytest.raises(DialerStoreError, match="no attempt 'ghost'"):
        await repo.record_disposition("ghost", SALE, "1001", NOON_NY)


def test_the_printed_settings_load_back_with_their_dispositions() -> None:
    settings = parse_campaign_settings({**BASE, "dispositions": {
        "1": {"name": "sale"}, "3": {"name": "call-back", "lead": "retry", "retry_minutes": 1440},
    }})
    assert parse_campaign_settings(tomllib.loads(settings_toml(settings))) == settings


@pytest.mark.parametrize("landing_first", ["disposition", "result"])
async def test_a_disposition_and_a_result_written_at_once_both_reach_the_lead(
    store: Database, store_url: str, landing_first: str
) -> None:
    """PostgreSQL (READ COMMITTED): while one of the two writes is in flight (written, not
    committed), the other must wait for it and see it. Had the second read the attempt before
    it wrote, each would see the other not yet done, and nobody would schedule the lead."""
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite runs one write transaction at a time: the two cannot overlap")
    repo, attempt = await answered_call(store)
    keyed = NOON_NY + timedelta(seconds=4)
    due = keyed + timedelta(minutes=CALL_AGAIN.retry_minutes)
    async def second_write() -> object:
        if landing_first == "disposition":
            return await repo.record_result(attempt.attempt_id, Result.HUMAN, NOON_NY, cause=16)
        return await repo.record_disposition(attempt.attempt_id, CALL_AGAIN, "1001", keyed)

    holder = await open_store(store_url)
    try:
        async with holder.transaction() as conn:
            if landing_first == "disposition":
                await conn.execute(
                    "UPDATE attempts SET disposition = 'call-again', disposition_lead = 'retry',"
                    " disposition_retry_at = :due, disposed_by = '1001' WHERE attempt_id = :id",
                    {"due": to_iso(due), "id": attempt.attempt_id},
                )
            else:
                await conn.execute(
                    "UPDATE attempts SET state = 'done', result = 'human' WHERE attempt_id = :id",
                    {"id": attempt.attempt_id},
                )
            second = asyncio.create_task(second_write())
            await asyncio.sleep(0.5)
            assert not second.done()  # it waits on the attempt's row
        outcome = await asyncio.wait_for(second, 10)
    finally:
        await holder.close()
    assert outcome == (due if landing_first == "disposition" else DisposedLead("ready", due))
    state, next_attempt = await lead_of(store)
    assert (state, from_iso(next_attempt)) == ("ready", due)
