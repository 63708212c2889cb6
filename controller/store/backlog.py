"""Writes the store could not take while it was unreachable, kept and replayed once it answers.

Calls go on in Asterisk while PostgreSQL restarts (or a SQLite file stays locked): what they do
meanwhile must be stored late rather than never. A service hands each such write to
``WriteBacklog.write``; if the store refuses it with ``StoreError`` (unreachable, not a broken
constraint), the write waits here and the supervised ``run`` loop tries it again every
``retry_s`` until it lands. While any write waits, new ones queue behind it and are replayed
in turn (two writes failing at once may swap places: writes of one row must not depend on
their order, as upserts and ``INSERT ... ON CONFLICT DO NOTHING`` do not).

A write is a coroutine function that can run more than once: one whose commit reached the
server but whose answer did not is replayed too. Writes are upserts, or settle something and
treat "already settled" as done. Waiting writes live in memory only: a controller that stops or
is killed during an outage loses them (the dialer's open attempts are still settled from their
AstDB records by the next worker), and beyond ``limit`` the oldest is dropped and logged.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from controller.logs import get_logger
from controller.store.base import StoreError

log = get_logger("store")

Write = Callable[[], Awaitable[None]]

RETRY_S = 1.0
# about an hour of a busy site's call rows; a bound on memory, not a figure anyone should reach
LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class _Waiting:
    what: str
    write: Write
    ids: dict[str, str]


class WriteBacklog:
    def __init__(
        self,
        retry_s: float = RETRY_S,
        limit: int = LIMIT,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._retry_s = retry_s
        self._limit = limit
        self._sleep = sleep  # injected so a test decides when a retry is due
        self._waiting: deque[_Waiting] = deque()
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        """How many writes wait for the store."""
        return len(self._waiting)

    async def write(self, what: str, write: Write, **ids: str) -> None:
        """Run ``write`` now, or keep it for later if the store is unreachable (or writes
        already wait). ``what`` and ``ids`` (call, attempt, campaign ids) name it in logs; any
        error other than ``StoreError`` is the caller's, as if there were no backlog."""
        if not self._waiting:
            try:
                await write()
                return
            except StoreError as error:
                log.warning("store.write_deferred", what=what, error=str(error), **ids)
        if len(self._waiting) >= self._limit:
            dropped = self._waiting.popleft()
            log.error(
                "store.write_dropped", what=dropped.what, limit=self._limit, **dropped.ids
            )
        self._waiting.append(_Waiting(what, write, ids))
        self._wake.set()

    async def run(self) -> None:
        """Replay waiting writes in order, the first one again every ``retry_s`` until it
        lands (supervised: it never returns)."""
        while True:
            await self._wake.wait()
            done = 0
            while self._waiting:
                head = self._waiting[0]
                try:
                    await head.write()
                except StoreError:
                    await self._sleep(self._retry_s)
                    continue
                except Exception:  # a bug of that write: it would block every write behind it
                    log.exception("store.write_failed", what=head.what, **head.ids)
                self._waiting.popleft()
                done += 1
            self._wake.clear()
            log.info("store.backlog_replayed", writes=done)
