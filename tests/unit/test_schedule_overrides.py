"""Schedule overrides: stored (both backends), seen by every controller on the store, and the
API and CLI that set them."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controller.api import schedules
from controller.api.keys import CONFIG, SCHEDULE_OVERRIDES
from controller.config import parse_config
from controller.inbound.hours import Override
from controller.inbound.overrides import ScheduleOverrides, parse_override
from controller.store import open_store
from controller.store.base import Database

from .test_recording_support import write_config


def test_parse_override_names_the_choices() -> None:
    assert parse_override("open") is Override.OPEN
    assert parse_override("closed") is Override.CLOSED
    assert parse_override("auto") is None
    with pytest.raises(ValueError, match=r"is not an override \(one of open, closed, auto\)"):
        parse_override("shut")


async def test_an_override_is_stored_seen_by_another_controller_and_lifted(
    store: Database,
) -> None:
    here = ScheduleOverrides(store, ["office", "shop"])
    there = ScheduleOverrides(store, ["office", "shop"])  # another node on the same store
    view = here.current  # readers keep the mapping: it stays live
    await here.set("office", Override.OPEN, by="test")
    assert view == {"office": Override.OPEN}
    await there.refresh()
    assert there.current == {"office": Override.OPEN}
    await here.set("office", Override.CLOSED)  # a second override replaces the first
    await there.refresh()
    assert there.current == {"office": Override.CLOSED}
    await here.set("office", None)
    await there.refresh()
    assert view == {} and there.current == {}
    with pytest.raises(KeyError):
        await here.set("nowhere", Override.OPEN)


async def test_an_override_of_a_schedule_the_config_no_longer_has_is_ignored(
    store: Database,
) -> None:
    await ScheduleOverrides(store, ["old"]).set("old", Override.OPEN)
    renamed = ScheduleOverrides(store, ["new"])
    await renamed.refresh()
    assert renamed.current == {}


SCHEDULES = (
    '[inbound.schedules.shop]\ntimezone = "UTC"\nafter_hours = "announcement:closed"\n'
    '[inbound.queues.sales]\n'
    '[inbound.numbers."+442079460000"]\nqueue = "sales"\nschedule = "shop"\n'
)
AUTH = {"Authorization": "Bearer t0ken"}


@pytest.fixture
async def client(tmp_path: Path, store_url: str) -> AsyncIterator[TestClient]:
    toml = write_config(tmp_path, "", store_url).read_text() + SCHEDULES
    config = parse_config(tomllib.loads(toml))
    store = await open_store(config.store.url)
    app = web.Application()
    app[CONFIG] = config
    app[SCHEDULE_OVERRIDES] = ScheduleOverrides(store, config.inbound.schedules)
    schedules.add_routes(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client
    await store.close()


async def test_the_api_opens_a_closed_schedule_and_lifts_it(client: TestClient) -> None:
    listing = await (await client.get("/api/v1/schedules")).json()
    assert [(s["schedule"], s["open"], s["override"]) for s in listing["schedules"]] == [
        ("shop", False, "auto")
    ]
    response = await client.put("/api/v1/schedules/shop/override", json={"state": "open"},
                                headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert (body["open"], body["hours_open"], body["override"]) == (True, False, "open")
    response = await client.put("/api/v1/schedules/shop/override", json={"state": "auto"},
                                headers=AUTH)
    assert (await response.json())["open"] is False


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "error"),
    [
        ("shop", {"state": "open"}, {}, 401, "bearer token"),
        ("nowhere", {"state": "open"}, AUTH, 404, "no schedule 'nowhere' in inbound.schedules"),
        ("shop", {"state": "shut"}, AUTH, 400, "state: 'shut' is not an override"),
        ("shop", {}, AUTH, 400, 'give {"state"'),
    ],
)
async def test_the_api_refuses_bad_overrides_naming_what(
    client: TestClient, path: str, body: dict[str, str], headers: dict[str, str], status: int,
    error: str,
) -> None:
    response = await client.put(f"/api/v1/schedules/{path}/override", json=body,
                                headers=headers)
    assert response.status == status
    assert error in (await response.json())["error"]
