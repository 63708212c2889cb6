"""SQLite implementation of the store (WAL mode, one writer, off the event loop via aiosqlite).

SQLite serialises writers anyway, so one connection suffices; a lock keeps a transaction's
statements from interleaving with other coroutines' statements on that connection.
``BEGIN IMMEDIATE`` takes the write lock up front, so a claim-then-update cannot deadlock with a
second process (a CLI import while the controller runs).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from controller.store.base import Connection, ConstraintViolation, Params, Row, StoreError
from controller.store.migrations import apply_migrations
from controller.store.url import SqliteUrl, parse_store_url

BUSY_TIMEOUT_MS = 10_000


def sqlite_path(url: str) -> Path:
    try:
        parsed = parse_store_url(url)
    except ValueError as error:
        raise StoreError(f"store.url: {error}") from None
    if not isinstance(parsed, SqliteUrl):
        raise StoreError(f"not a sqlite URL: {url!r}")
    return parsed.path


@contextmanager
def _store_errors(sql: str) -> Iterator[None]:
    """Operational failures (disk full, locked too long, I/O error) become ``StoreError``,
    constraint violations ``ConstraintViolation``, as on PostgreSQL.

    Other programming errors stay ``sqlite3`` errors: they are bugs, not an unavailable store.
    """
    try:
        yield
    except sqlite3.IntegrityError as error:
        raise ConstraintViolation(str(error)) from error
    except sqlite3.OperationalError as error:
        raise StoreError(f"{error} (in: {sql.split()[0] if sql.split() else sql})") from error


class _Conn:
    skip_locked = ""  # a transaction holds the one write lock: nothing else can hold a row

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, params: Params = None) -> int:
        with _store_errors(sql):
            cursor = await self._db.execute(sql, dict(params or {}))
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        with _store_errors(sql):
            await self._db.executemany(sql, [dict(r) for r in rows])

    async def fetchone(self, sql: str, params: Params = None) -> Row | None:
        with _store_errors(sql):
            async with self._db.execute(sql, dict(params or {})) as cursor:
                row = await cursor.fetchone()
        return dict(row) if row is not None else None

    async def fetchall(self, sql: str, params: Params = None) -> list[Row]:
        with _store_errors(sql):
            async with self._db.execute(sql, dict(params or {})) as cursor:
                return [dict(r) for r in await cursor.fetchall()]

    async def iterate(self, sql: str, params: Params = None) -> AsyncIterator[Row]:
        with _store_errors(sql):
            async with self._db.execute(sql, dict(params or {})) as cursor:
                async for row in cursor:
                    yield dict(row)


class SqliteDatabase:
    skip_locked = _Conn.skip_locked
    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._conn = _Conn(db)
        self._lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, url: str) -> SqliteDatabase:
        path = sqlite_path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, aiosqlite.Error) as error:
            raise StoreError(f"cannot open store {path}: {error}") from error
        db.row_factory = aiosqlite.Row
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except sqlite3.DatabaseError as error:
            await db.close()
            raise StoreError(f"cannot use store {path}: {error}") from error
        store = cls(db, path)
        async with store.transaction() as conn:
            await apply_migrations(conn)
        return store

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            else:
                await self._db.execute("COMMIT")

    async def execute(self, sql: str, params: Params = None) -> int:
        async with self._lock:
            return await self._conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        async with self._lock:
            await self._conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = None) -> Row | None:
        async with self._lock:
            return await self._conn.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = None) -> list[Row]:
        async with self._lock:
            return await self._conn.fetchall(sql, params)

    async def iterate(self, sql: str, params: Params = None) -> AsyncIterator[Row]:
        async with self._lock:
            async for row in self._conn.iterate(sql, params):
                yield row

    async def ping(self) -> bool:
        try:
            async with self._lock:
                await self._conn.fetchone("SELECT 1 AS ok")
        except (sqlite3.Error, StoreError, ValueError):
            return False
        return True

    async def close(self) -> None:
        await self._db.close()

