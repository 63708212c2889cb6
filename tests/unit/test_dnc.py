"""Do-not-call lists: checked at claim time, global and per campaign, added after import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from controller.dialer.leads import Lead
from controller.dialer.repository import GLOBAL_DNC, DialerRepository, DialerStoreError
from controller.dialer.settings import AgentGroup, CampaignSettings
from controller.store.base import Database

NOON_NY = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
SETTINGS = CampaignSettings(
    trunk="trunk", caller_id="+12125550100", agents=AgentGroup(queue="sales")
)
ADA, BOB = "+12125550101", "+12125550102"


@pytest.fixture
async def repo(store: Database) -> AsyncIterator[DialerRepository]:
    repository = DialerRepository(store)
    for name in ("demo", "other"):
        await repository.create_campaign(name, SETTINGS, NOON_NY)
        await repository.change_state(name, "start", NOON_NY)
        await repository.import_leads(
            name, [Lead(ADA, timezone="America/New_York"), Lead(BOB, timezone="America/New_York")],
            NOON_NY,
        )
    yield repository


async def claimed_phones(repo: DialerRepository, campaign: str) -> list[str]:
    return sorted(a.phone for a in await repo.claim(campaign, 10, "w", NOON_NY))


async def test_number_added_to_global_list_after_import_is_never_dialed(
    repo: DialerRepository,
) -> None:
    assert await repo.add_dnc(GLOBAL_DNC, [ADA], NOON_NY) == 1
    assert await claimed_phones(repo, "demo") == [BOB]
    assert await claimed_phones(repo, "other") == [BOB]


async def test_campaign_list_applies_to_its_campaign_only(repo: DialerRepository) -> None:
    await repo.add_dnc("demo", [ADA], NOON_NY)
    assert await claimed_phones(repo, "demo") == [BOB]
    assert await claimed_phones(repo, "other") == [ADA, BOB]


async def test_removed_number_becomes_dialable_again(repo: DialerRepository) -> None:
    await repo.add_dnc(GLOBAL_DNC, [ADA, BOB], NOON_NY)
    assert await claimed_phones(repo, "demo") == []
    assert await repo.remove_dnc(GLOBAL_DNC, [ADA]) == 1
    assert await claimed_phones(repo, "demo") == [ADA]


async def test_adding_twice_keeps_one_entry(repo: DialerRepository) -> None:
    await repo.add_dnc(GLOBAL_DNC, [ADA], NOON_NY, "first")
    assert await repo.add_dnc(GLOBAL_DNC, [ADA, ADA], NOON_NY, "second") == 0
    rows = await repo.list_dnc(GLOBAL_DNC)
    assert [(row["phone"], row["source"]) for row in rows] == [(ADA, "first")]


async def test_status_counts_leads_on_dnc(repo: DialerRepository) -> None:
    await repo.add_dnc(GLOBAL_DNC, [ADA], NOON_NY)
    await repo.add_dnc("demo", [BOB], NOON_NY)
    status = await repo.status("demo", NOON_NY)
    assert status["leads"]["on_dnc"] == 2


async def test_list_for_unknown_campaign_is_refused(repo: DialerRepository) -> None:
    with pytest.raises(DialerStoreError, match="no campaign named 'ghost'"):
        await repo.add_dnc("ghost", [ADA], NOON_NY)
