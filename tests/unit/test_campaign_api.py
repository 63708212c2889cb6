"""``/api/v1/campaigns``: progress and settings read without a token, state and settings changes
with one, clear errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient

from controller.api import campaigns
from controller.config import parse_config
from controller.dialer.leads import Lead
from controller.dialer.repository import DialerRepository
from controller.dialer.settings import AgentGroup, CampaignSettings
from controller.store import open_store

from .api_support import serving

AUTH = {"Authorization": "Bearer t0ken"}


@pytest.fixture
async def client(store_url: str) -> AsyncIterator[TestClient]:
    config = parse_config({
        "http": {"api_token": "t0ken"},
        "ami": {"username": "u", "secret": "s"},
        "ari": {"username": "u", "password": "p"},
        "store": {"url": store_url},
    })
    store = await open_store(config.store.url)
    repo = DialerRepository(store)
    now = datetime.now(UTC)
    settings = CampaignSettings(
        trunk="trunk", caller_id="+12125550100", agents=AgentGroup(queue="s")
    )
    await repo.create_campaign("spring", settings, now)
    await repo.import_leads("spring", [Lead("+12125550101"), Lead("+12125550102")], now)
    async with serving(config, store, campaigns.add_routes) as test_client:
        yield test_client
    await store.close()


async def test_progress_is_readable_without_a_token(client: TestClient) -> None:
    response = await client.get("/api/v1/campaigns")
    assert response.status == 200
    [row] = (await response.json())["campaigns"]
    assert (row["name"], row["state"], row["leads"], row["done"]) == ("spring", "created", 2, 0)
    response = await client.get("/api/v1/campaigns/spring")
    report = await response.json()
    assert (report["state"], report["leads"]["total"]) == ("created", 2)
    assert report["abandon_target_percent"] == 3.0


async def test_state_changes_need_the_token_and_follow_the_lifecycle(client: TestClient) -> None:
    response = await client.post("/api/v1/campaigns/spring/start")
    assert response.status == 401
    response = await client.post("/api/v1/campaigns/spring/start", headers=AUTH)
    assert await response.json() == {"campaign": "spring", "from": "created", "to": "running"}
    response = await client.post("/api/v1/campaigns/spring/resume", headers=AUTH)
    assert response.status == 409
    assert "cannot resume a running campaign" in (await response.json())["error"]
    response = await client.post("/api/v1/campaigns/spring/pause", headers=AUTH)
    assert (await response.json())["to"] == "paused"
    response = await client.get("/api/v1/campaigns/spring")
    assert (await response.json())["state"] == "paused"


async def test_unknown_campaign_or_action_is_a_404(client: TestClient) -> None:
    response = await client.get("/api/v1/campaigns/autumn")
    assert response.status == 404
    assert "no campaign named 'autumn'" in (await response.json())["error"]
    response = await client.post("/api/v1/campaigns/autumn/start", headers=AUTH)
    assert response.status == 404
    response = await client.post("/api/v1/campaigns/spring/explode", headers=AUTH)
    assert response.status == 404
    response = await client.get("/api/v1/campaigns/spring")
    assert (await response.json())["state"] == "created"  # nothing changed


async def test_settings_read_back_and_replaced_with_the_token(client: TestClient) -> None:
    response = await client.get("/api/v1/campaigns/spring/settings")
    shown = await response.json()
    assert (shown["revision"], shown["settings"]["dialing_mode"]) == (1, "progressive")
    changed = {**shown["settings"], "dialing_mode": "predictive", "line_cap": 40}
    response = await client.put("/api/v1/campaigns/spring/settings", json=changed)
    assert response.status == 401
    response = await client.put("/api/v1/campaigns/spring/settings", json=changed, headers=AUTH)
    assert await response.json() == {
        "campaign": "spring", "revision": 2, "changed": ["dialing_mode", "line_cap"]}
    response = await client.get("/api/v1/campaigns/spring")
    assert (await response.json())["dialing_mode"] == "predictive"


async def test_bad_settings_name_the_key_and_change_nothing(client: TestClient) -> None:
    settings = (await (await client.get("/api/v1/campaigns/spring/settings")).json())["settings"]
    bad = {**settings, "line_cap": 0, "speed": 3}
    response = await client.put("/api/v1/campaigns/spring/settings", json=bad, headers=AUTH)
    assert response.status == 400
    problems = {p["key"]: p["message"] for p in (await response.json())["problems"]}
    assert problems["speed"] == "unknown key" and "greater than" in problems["line_cap"]
    response = await client.put(
        "/api/v1/campaigns/spring/settings", data="[]", headers=AUTH
    )
    assert response.status == 400
    other_windows = {**settings, "abandon": {**settings["abandon"], "windows_hours": [1]}}
    response = await client.put(
        "/api/v1/campaigns/spring/settings", json=other_windows, headers=AUTH
    )
    assert response.status == 409
    assert "abandon.windows_hours cannot change" in (await response.json())["error"]
    response = await client.put("/api/v1/campaigns/autumn/settings", json=settings, headers=AUTH)
    assert response.status == 404
    shown = await (await client.get("/api/v1/campaigns/spring/settings")).json()
    assert (shown["revision"], shown["settings"]) == (1, settings)


async def test_recycle_needs_the_token_and_names_what_is_wrong(
    client: TestClient, store_url: str
) -> None:
    store = await open_store(store_url)
    await store.execute(
        "UPDATE leads SET state = 'done', attempts = 3, last_result = 'busy',"
        " last_result_at = '2026-01-01T00:00:00.000000+00:00' WHERE phone = '+12125550101'"
    )
    await store.close()
    recycle = "/api/v1/campaigns/spring/recycle"
    response = await client.post(recycle, json={"results": ["busy"]})
    assert response.status == 401
    response = await client.post(recycle, json={"results": ["busy"], "dry_run": True},
                                 headers=AUTH)
    assert await response.json() == {
        "campaign": "spring", "recycled": 1, "on_dnc": 0, "dry_run": True
    }
    for body, status, problem in [
        ({"results": ["busy"], "older_than_hours": -1}, 400, "greater than or equal to 0"),
        ({"results": ["gone"]}, 400, "Input should be 'human'"),
        ({"results": ["busy"], "when": 1}, 400, "unknown key"),
        ({"results": ["not_dialed"]}, 400, "no lead is finished by not_dialed"),
        ({}, 400, "at least one result or disposition"),
        ({"dispositions": ["sale"]}, 400, "'spring' has no disposition sale"),
    ]:
        response = await client.post(recycle, json=body, headers=AUTH)
        assert response.status == status and problem in await response.text(), body
    response = await client.post("/api/v1/campaigns/autumn/recycle", json={"results": ["busy"]},
                                 headers=AUTH)
    assert response.status == 404
    response = await client.post(recycle, json={"results": ["busy"]}, headers=AUTH)
    assert (await response.json())["recycled"] == 1
    response = await client.get("/api/v1/campaigns/spring")
    assert (await response.json())["leads"] == {
        "total": 2, "ready": 2, "on_dnc": 0, "no_timezone": 2
    }
