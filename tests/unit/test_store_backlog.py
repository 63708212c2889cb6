"""The write backlog: writes the store refused while unreachable wait, in order, and land once
it answers; and the API's 503 while the store is down."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from controller.api import system
from controller.store.backlog import WriteBacklog
from controller.store.base import StoreError

WITHIN_S = 5.0


class FlakyStore:
    """A store that refuses every write while ``down`` and otherwise appends it to ``rows``."""

    def __init__(self) -> None:
        self.down = False
        self.rows: list[str] = []

    def writer(self, row: str) -> Any:
        async def write() -> None:
            if self.down:
                raise StoreError("connection refused")
            self.rows.append(row)

        return write


class Retries:
    """The backlog's sleep: each retry waits until the test lets it go."""

    def __init__(self) -> None:
        self.due = asyncio.Event()
        self.count = 0

    async def __call__(self, _seconds: float) -> None:
        self.count += 1
        await self.due.wait()
        self.due.clear()


async def until(check: Any, what: str) -> None:
    for _ in range(int(WITHIN_S / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out after {WITHIN_S}s waiting for {what}")


async def settled(backlog: WriteBacklog) -> None:
    await until(lambda: len(backlog) == 0, "every waiting write to land")


async def test_a_write_lands_at_once_while_the_store_answers() -> None:
    store, backlog = FlakyStore(), WriteBacklog()
    await backlog.write("row", store.writer("a"))
    assert store.rows == ["a"]
    assert len(backlog) == 0


async def test_refused_writes_wait_and_land_in_order_once_the_store_is_back() -> None:
    store, retries = FlakyStore(), Retries()
    backlog = WriteBacklog(sleep=retries)
    replaying = asyncio.create_task(backlog.run())
    try:
        store.down = True
        with capture_logs() as logs:
            await backlog.write("call ended", store.writer("a"), call_id="c1")
        assert [e["event"] for e in logs] == ["store.write_deferred"]
        assert logs[0]["call_id"] == "c1"
        store.down = False  # the next write queues behind the waiting one all the same
        await backlog.write("call ended", store.writer("b"))
        assert store.rows == []
        assert len(backlog) == 2
        store.down = True
        await until(lambda: retries.count == 1, "the first retry")
        store.down = False
        retries.due.set()
        await settled(backlog)
        assert store.rows == ["a", "b"]
        await backlog.write("call ended", store.writer("c"))  # empty again: written at once
        assert store.rows == ["a", "b", "c"]
    finally:
        replaying.cancel()


async def test_a_write_failing_otherwise_is_logged_and_blocks_none_behind_it() -> None:
    store = FlakyStore()
    backlog = WriteBacklog()
    replaying = asyncio.create_task(backlog.run())

    async def buggy() -> None:
        raise KeyError("no such column")

    try:
        store.down = True
        await backlog.write("call ended", store.writer("a"))
        await backlog.write("overflow", buggy, call_id="c2")
        await backlog.write("call ended", store.writer("b"))
        with capture_logs() as logs:
            store.down = False
            await settled(backlog)
        assert store.rows == ["a", "b"]
        [failed] = [e for e in logs if e["event"] == "store.write_failed"]
        assert failed["call_id"] == "c2"
    finally:
        replaying.cancel()


async def test_beyond_its_limit_the_oldest_write_is_dropped_and_logged() -> None:
    store = FlakyStore()
    store.down = True
    backlog = WriteBacklog(limit=2)
    with capture_logs() as logs:
        for row in "abc":
            await backlog.write("row", store.writer(row), call_id=row)
    assert len(backlog) == 2
    [dropped] = [e for e in logs if e["event"] == "store.write_dropped"]
    assert dropped["call_id"] == "a"
    assert dropped["log_level"] == "error"


@pytest.mark.parametrize("raised", [StoreError("pool timeout"), None])
async def test_a_route_finding_the_store_down_answers_503_with_retry_after(
    raised: StoreError | None,
) -> None:
    async def handler(_request: web.Request) -> web.Response:
        if raised is not None:
            raise raised
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[system.store_unavailable])
    app.router.add_get("/api/v1/thing", handler)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/api/v1/thing")
        if raised is None:
            assert response.status == 200
            return
        assert response.status == 503
        assert response.headers["Retry-After"] == str(system.STORE_RETRY_AFTER_S)
        assert "store is unavailable" in (await response.json())["error"]
