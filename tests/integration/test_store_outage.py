"""PostgreSQL down under load, then back: calls go on, the API says 503, nothing stored is lost.

One Asterisk and one controller on the session's PostgreSQL cluster are enough for what an
outage does to a controller: it is the store every controller of a site shares, and each one
meets the outage alone (its own pool, its own backlog of writes). The server is stopped, not
restarted, so the outage lasts long enough to be seen: two calls are answered before it, end
during it, and two more arrive, are answered and end during it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from controller.app import Controller
from testbed.asterisk import AsteriskInstance
from testbed.controller_config import write_controller_config
from testbed.postgres import PostgresCluster

from .conftest import free_loopback_port
from .harness import Api, running_controller, wait_for
from .test_inbound import inbound_toml, login, logout_all, number, queue_toml, routing, unique_queue

CALLS_BEFORE = 2
CALLS_DURING = 2
TALK_MS = "3000"  # the agent's phone hangs up after 3 s: every call ends inside the outage


async def answered(controller: Controller, count: int) -> bool:
    """``count`` calls are answered and their answers stored (a row with its agent), so none
    of their writes but their ends is left for the outage."""
    rows = await controller.store.fetchall(
        "SELECT call_id FROM inbound_calls WHERE agent_id IS NOT NULL AND ended_at IS NULL")
    return len(rows) >= count


async def health(api: Api) -> tuple[int, Any]:
    return await api.request("GET", "/healthz", token=None)


async def degraded(api: Api) -> Any:
    status, body = await health(api)
    return body if status == 503 and body["store"] is False else None


@pytest.mark.timeout(150)
async def test_calls_go_on_through_a_postgresql_outage_and_every_row_is_stored_after(
    asterisk: AsteriskInstance, sipp: Any, tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    base = tmp_path / "base.toml"
    write_controller_config(
        asterisk, base, http_port=free_loopback_port(), store_path=tmp_path / "unused.db",
        store_url=postgres_cluster.create_database("outage"),
    )
    q = unique_queue("outage")
    config = routing(base, inbound_toml(queue_toml(q), number("5000", q)), tmp_path / "c.toml",
                     asterisk)
    sipp.agent_phones(RING_S="1", TALK_MS=TALK_MS)
    api = Api(config)
    try:
        async with running_controller(config) as running:
            controller = running.controller
            await login(api, "1001")
            await login(api, "1002")
            try:
                before = sipp.call("5000", calls=CALLS_BEFORE, HOLD_MS="30000")
                await wait_for(lambda: answered(controller, CALLS_BEFORE), 30,
                               "the first calls to be answered")

                stopped_at = time.monotonic()
                await asyncio.to_thread(postgres_cluster.stop_server)
                body = await wait_for(lambda: degraded(api), 15, "/healthz to say degraded")
                print(f"degraded {time.monotonic() - stopped_at:.2f} s after the stop: {body}")
                status, error = await api.request("GET", "/api/v1/queues")
                assert status == 503, error
                assert "store is unavailable" in error["error"]

                during = sipp.call("5000", calls=CALLS_DURING, HOLD_MS="30000")
                for caller in (before, during):
                    stats = await asyncio.to_thread(caller.wait, 40)
                    assert stats.successful == caller.calls, caller.output()
                # every call answered and ended while the store was down, its rows kept
                assert postgres_cluster.is_running() is False
                body = await degraded(api)
                assert body is not None
                # 2 arrivals, 2 answers and 4 ends (the first calls' arrivals and answers were
                # stored before)
                assert body["store_writes_waiting"] == (
                    CALLS_DURING + CALLS_DURING + CALLS_BEFORE + CALLS_DURING)

                started_at = time.monotonic()
                await asyncio.to_thread(postgres_cluster.start_server)
                await wait_for(api.healthy, 30, "the controller to be healthy again")
                print(f"healthy {time.monotonic() - started_at:.2f} s after the start")
                rows = await wait_for(lambda: ended_rows(controller, CALLS_BEFORE + CALLS_DURING),
                                      15, "every call's row")
                assert [row["outcome"] for row in rows] == ["answered"] * 4
                assert all(row["answered_at"] and row["agent_id"] in {"1001", "1002"}
                           for row in rows)
                status, listing = await api.request("GET", "/api/v1/queues")
                assert status == 200, listing
                [ours] = [s for s in listing["queues"] if s["queue"] == q]
                assert ours["today"] == {"answered": 4}
                assert "store_writes_waiting" not in (await health(api))[1]
            finally:
                if postgres_cluster.is_running():
                    await logout_all(api)
    finally:
        if not postgres_cluster.is_running():  # the session's other tests need it
            await asyncio.to_thread(postgres_cluster.start_server)


async def ended_rows(controller: Controller, count: int) -> list[Any] | None:
    rows = await controller.store.fetchall(
        "SELECT * FROM inbound_calls WHERE ended_at IS NOT NULL ORDER BY arrived_at"
    )
    return list(rows) if len(rows) >= count else None
