"""The supervisor: a failing long-running task is logged, counted, shown in /healthz, restarted."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controller.api import keys, system
from controller.logs import configure_logging
from controller.metrics.registry import Metrics, SnapshotProviders
from controller.metrics.snapshot import ComponentUp
from controller.store.backlog import WriteBacklog
from controller.tasks import Backoff, Supervisor

WITHIN_S = 5.0


class Gate:
    """The supervisor's sleep: the backoff is over when the test says so."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._open = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await self._open.wait()
        self._open.clear()

    def open(self) -> None:
        self._open.set()


class Flaky:
    """A task factory whose first ``failures`` runs raise; later runs serve until cancelled."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs = 0
        self.serving = asyncio.Event()

    async def __call__(self) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise RuntimeError("database is locked")
        self.serving.set()
        await asyncio.Event().wait()


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WITHIN_S
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {WITHIN_S}s waiting for {what}")
        await asyncio.sleep(0.01)


def components_up() -> Callable[[], Awaitable[ComponentUp]]:
    async def up() -> ComponentUp:
        return ComponentUp(ami=True, ari=True, store=True)

    return up


@pytest.fixture
async def log() -> AsyncIterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    yield stream
    configure_logging("info")


def events(log: io.StringIO, name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
    return [e for e in lines if e["event"] == name]


async def test_a_task_that_raises_is_restarted_counted_and_shown_in_healthz(
    log: io.StringIO,
) -> None:
    metrics = Metrics(SnapshotProviders(components=components_up()))
    gate = Gate()
    supervisor = Supervisor(metrics, sleep=gate)
    flaky = Flaky(failures=1)
    supervisor.add("flaky", flaky)
    app = web.Application()
    app[keys.COMPONENTS] = components_up()
    app[keys.SUPERVISOR] = supervisor
    app[keys.METRICS] = metrics
    app[keys.WRITES] = WriteBacklog()
    app.cleanup_ctx.append(supervisor.cleanup_ctx)
    system.add_routes(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        await until(lambda: supervisor.down() == ("flaky",), "the task to be down")
        response = await client.get("/healthz")
        assert response.status == 503
        assert await response.json() == {
            "status": "degraded", "ami": True, "ari": True, "store": True,
            "tasks_down": ["flaky"],
        }
        scrape = await (await client.get("/metrics")).text()
        assert 'callctl_task_failures_total{task="flaky"} 1.0' in scrape

        gate.open()  # the backoff is over: the task runs again
        await asyncio.wait_for(flaky.serving.wait(), WITHIN_S)
        assert supervisor.down() == ()
        response = await client.get("/healthz")
        assert response.status == 200
        assert await response.json() == {"status": "ok", "ami": True, "ari": True, "store": True}
    assert flaky.runs == 2
    assert gate.delays == [Backoff().first]
    [failed] = events(log, "task.failed")
    assert failed["task"] == "flaky"
    assert "RuntimeError: database is locked" in failed["exception"]  # the traceback
    assert failed["level"] == "error"


async def test_a_task_that_returns_is_restarted_with_a_growing_capped_backoff() -> None:
    gate = Gate()
    supervisor = Supervisor(backoff=Backoff(first=1.0, cap=3.0), sleep=gate)
    runs = 0

    async def returns_at_once() -> None:
        nonlocal runs
        runs += 1

    supervisor.add("short", returns_at_once)
    supervisor.start()
    try:
        for expected_runs in (1, 2, 3, 4):
            if expected_runs > 1:
                gate.open()
            await until(lambda: len(gate.delays) == expected_runs, "the next backoff")  # noqa: B023
            assert runs == expected_runs
            assert supervisor.down() == ("short",)
    finally:
        await supervisor.stop()
    assert gate.delays == [1.0, 2.0, 3.0, 3.0]
    assert supervisor.down() == ()


def test_backoff_doubles_up_to_its_cap_and_starts_over_after_a_long_run() -> None:
    backoff = Backoff(first=0.5, cap=4.0)
    delays = [backoff.after(None, 0.0)]
    for _ in range(5):
        delays.append(backoff.after(delays[-1], 0.1))
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.after(4.0, ran_s=4.0) == 0.5  # it ran as long as the cap: healthy again


async def test_stop_ends_every_task_and_a_name_is_supervised_once() -> None:
    supervisor = Supervisor()
    flaky = Flaky(failures=0)
    supervisor.add("serving", flaky)
    with pytest.raises(ValueError, match="'serving' is already supervised"):
        supervisor.add("serving", flaky)
    supervisor.start()
    await asyncio.wait_for(flaky.serving.wait(), WITHIN_S)
    await supervisor.stop()
    supervised = [t for t in asyncio.all_tasks() if t.get_name().startswith("supervised:")]
    assert supervised == []
