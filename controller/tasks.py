"""The controller's tasks: long-running services under one supervisor, and fire-and-forget
tasks that are neither garbage-collected mid-flight nor fail silently.

A long-running task (the AMI and ARI loops, the inbound ticker, the dialer loop, the retention
purge) must never end. If one raises, the ``Supervisor`` logs the traceback naming the task,
counts the failure (``callctl_task_failures_total{task}``), reports the task as down (``/healthz``
answers ``degraded`` naming it) and starts it again after a capped exponential backoff. A task
that returns is a failure too: its loop should not have ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from controller.logs import get_logger

log = get_logger("tasks")

TaskFactory = Callable[[], Coroutine[Any, Any, None]]


class FailureCounter(Protocol):
    """Where failures are counted (``Metrics``: ``callctl_task_failures_total{task}``)."""

    def declare_task(self, task: str) -> None: ...

    def task_failed(self, task: str) -> None: ...


class _Uncounted:
    def declare_task(self, task: str) -> None:
        return None

    def task_failed(self, task: str) -> None:
        return None


_UNCOUNTED = _Uncounted()


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds before restarting a failed task: ``first``, doubling up to ``cap``; back to
    ``first`` once the task has run for ``cap`` seconds without failing."""

    first: float = 0.5
    cap: float = 30.0

    def after(self, previous: float | None, ran_s: float) -> float:
        if previous is None or ran_s >= self.cap:
            return self.first
        return min(previous * 2, self.cap)


class Supervisor:
    """Runs named long-running tasks and restarts each one that fails.

    A feature registers its loop with ``add(name, factory)``; ``factory`` makes a fresh
    coroutine for every (re)start. ``down()`` names the tasks waiting to be restarted.
    """

    def __init__(
        self,
        failures: FailureCounter = _UNCOUNTED,
        backoff: Backoff = Backoff(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._failures = failures
        self._backoff = backoff
        self._sleep = sleep  # injected so a test decides when the backoff is over
        self._factories: dict[str, TaskFactory] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._down: set[str] = set()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._factories)

    def add(self, name: str, factory: TaskFactory) -> None:
        if name in self._factories:
            raise ValueError(f"a task named {name!r} is already supervised")
        self._factories[name] = factory
        self._failures.declare_task(name)
        if self._running:  # already started: start this one too
            self._start(name)

    def down(self) -> tuple[str, ...]:
        """The tasks that failed and are not running again yet, sorted."""
        return tuple(sorted(self._down))

    def start(self) -> None:
        for name in self._factories:
            self._start(name)

    def _start(self, name: str) -> None:
        self._running[name] = asyncio.create_task(self._keep(name), name=f"supervised:{name}")

    async def stop(self) -> None:
        """Cancel every task and wait until all have ended."""
        tasks = list(self._running.values())
        self._running.clear()
        for task in tasks:
            task.cancel()
        # ``_keep`` handles every Exception of its task itself: only the CancelledErrors
        # asked for here come back, and they are the expected end, not an error to log
        await asyncio.gather(*tasks, return_exceptions=True)
        self._down.clear()

    async def cleanup_ctx(self, _app: object) -> AsyncIterator[None]:
        """For ``aiohttp.web.Application.cleanup_ctx``: the tasks run while the app does."""
        self.start()
        yield
        await self.stop()

    async def _keep(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        delay: float | None = None
        while True:
            started = loop.time()
            try:
                await self._factories[name]()
            except Exception:
                log.exception("task.failed", task=name)
            else:
                log.error("task.ended", task=name, detail="a long-running task returned")
            ran_s = loop.time() - started
            delay = self._backoff.after(delay, ran_s)
            self._down.add(name)
            self._failures.task_failed(name)
            log.warning("task.restarting", task=name, restart_in=delay, ran_s=round(ran_s, 3))
            await self._sleep(delay)
            self._down.discard(name)


class TaskSet:
    """Fire-and-forget tasks of one owner; a failure is logged with its traceback."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("task.failed", owner=self._owner, error=repr(error), exc_info=error)

    def __len__(self) -> int:
        return len(self._tasks)
