"""Fire-and-forget tasks that are neither garbage-collected mid-flight nor fail silently."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from controller.logs import get_logger

log = get_logger("tasks")


class TaskSet:
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
        if not task.cancelled() and task.exception() is not None:
            log.error("task.failed", owner=self._owner, error=repr(task.exception()))

    def __len__(self) -> int:
        return len(self._tasks)
