"""Lead recycling: which finished leads get a fresh set of attempts, and what stays as it was
(attempt numbers, do-not-call numbers, leads with calls still ahead), on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.dialer.leads import Lead
from controller.dialer.policy import RecycleRule, Result
from controller.dialer.repository import (
    GLOBAL_DNC,
    DialerRepository,
    DialerStoreError,
    RecycledLeads,
    UnknownDisposition,
)
from controller.dialer.settings import AgentGroup, CampaignSettings, Disposition
from controller.store.base import Database

NOON_NY = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
SETTINGS = CampaignSettings(
    trunk="trunk",
    caller_id="+12125550100",
    agents=AgentGroup(queue="sales"),
    max_attempts=2,
    dispositions={"1": Disposition(name="sale"), "2": Disposition(name="not-interested")},
)
NO_ANSWER = RecycleRule(results=frozenset({Result.NO_ANSWER}))


class Campaign:
    """The ``demo`` campaign with one lead per phone given, and the clock its calls run on."""

    def __init__(self, store: Database) -> None:
        self.store = store
        self.repo = DialerRepository(store)
        self.now = NOON_NY

    async def open(self, *phones: str) -> Campaign:
        await self.repo.create_campaign("demo", SETTINGS, self.now)
        await self.repo.change_state("demo", "start", self.now)
        leads = [Lead(phone, timezone="America/New_York") for phone in phones]
        await self.repo.import_leads("demo", leads, self.now)
        return self

    async def call(self, phone: str, result: Result, disposition: str | None = None) -> int:
        """Dial ``phone`` (due or not) to ``result``; returns the attempt's number."""
        await self.store.execute(
            "UPDATE leads SET next_attempt_at = CASE WHEN phone = :p THEN '' ELSE '9999' END"
            " WHERE state = 'ready'",
            {"p": phone},
        )
        [attempt] = await self.repo.claim("demo", 1, "w1", self.now)
        assert attempt.phone == phone
        self.now += timedelta(minutes=1)
        await self.repo.record_result(attempt.attempt_id, result, self.now, cause=16)
        if disposition is not None:
            [chosen] = [d for d in SETTINGS.dispositions.values() if d.name == disposition]
            await self.repo.record_disposition(attempt.attempt_id, chosen, "1001", self.now)
        return attempt.attempt_no

    async def lead(self, phone: str) -> tuple[str, int]:
        row = await self.store.fetchone(
            "SELECT state, attempts FROM leads WHERE phone = :p", {"p": phone}
        )
        assert row is not None
        return row["state"], row["attempts"]

    async def recycle(self, rule: RecycleRule, *, dry_run: bool = False) -> RecycledLeads:
        return await self.repo.recycle_leads("demo", rule, self.now, dry_run=dry_run)


A, B, C = "+12125550101", "+12125550102", "+12125550103"


async def test_an_exhausted_lead_gets_its_attempts_afresh_numbered_on(store: Database) -> None:
    demo = await Campaign(store).open(A)
    assert [await demo.call(A, Result.NO_ANSWER) for _ in range(2)] == [1, 2]
    assert await demo.lead(A) == ("done", 2)
    assert await demo.repo.claim("demo", 1, "w1", demo.now) == []

    assert await demo.recycle(NO_ANSWER) == RecycledLeads("demo", 1, 0, dry_run=False)
    assert await demo.lead(A) == ("ready", 2)
    # max_attempts (2) counts again from the recycle; attempt numbers go on from the last
    assert [await demo.call(A, Result.NO_ANSWER) for _ in range(2)] == [3, 4]
    assert await demo.lead(A) == ("done", 4)
    assert await demo.repo.claim("demo", 1, "w1", demo.now) == []


async def test_only_the_named_results_and_dispositions_are_recycled(store: Database) -> None:
    demo = await Campaign(store).open(A, B, C, "+12125550104")
    for _ in range(2):
        await demo.call(A, Result.NO_ANSWER)
        await demo.call(B, Result.BUSY)
    await demo.call(C, Result.HUMAN, "not-interested")
    await demo.call("+12125550104", Result.HUMAN, "sale")

    picked = RecycleRule(results=frozenset({Result.BUSY}),
                         dispositions=frozenset({"not-interested"}))
    assert (await demo.recycle(picked)).recycled == 2
    assert [(await demo.lead(p))[0] for p in (A, B, C, "+12125550104")] == [
        "done", "ready", "ready", "done"
    ]
    # a lead recycled and dialed again is judged by its new last attempt
    await demo.call(C, Result.HUMAN, "sale")
    assert (await demo.recycle(RecycleRule(dispositions=frozenset({"not-interested"})))
            ).recycled == 0


async def test_leads_with_calls_ahead_or_on_a_dnc_list_stay_as_they_are(
    store: Database,
) -> None:
    demo = await Campaign(store).open(A, B, C)
    await demo.call(A, Result.NO_ANSWER)  # one attempt left: not finished
    for _ in range(2):
        await demo.call(B, Result.NO_ANSWER)
        await demo.call(C, Result.NO_ANSWER)
    await demo.repo.add_dnc(GLOBAL_DNC, [C], demo.now, "test")
    await store.execute("UPDATE leads SET next_attempt_at = '' WHERE phone = :p", {"p": A})
    [dialing] = await demo.repo.claim("demo", 1, "w1", demo.now)  # A, mid-call

    assert await demo.recycle(NO_ANSWER) == RecycledLeads("demo", 1, 1, dry_run=False)
    assert [await demo.lead(p) for p in (A, B, C)] == [
        ("dialing", 2), ("ready", 2), ("done", 2)
    ]
    assert dialing.phone == A


async def test_a_lower_max_attempts_leaves_leads_ready_but_finished(store: Database) -> None:
    demo = await Campaign(store).open(A)
    await demo.call(A, Result.NO_ANSWER)
    await demo.repo.update_settings(
        "demo", SETTINGS.model_copy(update={"max_attempts": 1}), demo.now
    )
    assert await demo.lead(A) == ("ready", 1)
    assert (await demo.recycle(NO_ANSWER)).recycled == 1
    assert await demo.call(A, Result.NO_ANSWER) == 2


async def test_older_than_and_dry_run(store: Database) -> None:
    demo = await Campaign(store).open(A)
    for _ in range(2):
        await demo.call(A, Result.NO_ANSWER)
    demo.now += timedelta(hours=1)
    aged = RecycleRule(results=frozenset({Result.NO_ANSWER}), older_than=timedelta(hours=2))
    assert (await demo.recycle(aged)).recycled == 0
    assert await demo.recycle(NO_ANSWER, dry_run=True) == RecycledLeads("demo", 1, 0, True)
    assert await demo.lead(A) == ("done", 2)
    demo.now += timedelta(hours=1)
    assert (await demo.recycle(aged)).recycled == 1


async def test_refusals_name_the_campaign_and_what_it_has(store: Database) -> None:
    demo = await Campaign(store).open(A)
    with pytest.raises(UnknownDisposition, match=r"'demo' has no disposition Sale \(its"
                       r" dispositions: not-interested, sale\)"):
        await demo.recycle(RecycleRule(dispositions=frozenset({"Sale"})))
    await demo.repo.change_state("demo", "stop", demo.now)
    with pytest.raises(DialerStoreError, match="'demo' is stopped"):
        await demo.recycle(NO_ANSWER)


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({}, "at least one result or disposition"),
        ({"results": frozenset({Result.NOT_DIALED})}, "no lead is finished by not_dialed"),
        ({"results": frozenset({Result.BUSY}), "older_than": timedelta(hours=-1)},
         "older_than must not be negative"),
    ],
)
def test_a_rule_names_what_it_picks(rule: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RecycleRule(**rule)  # type: ignore[arg-type]
