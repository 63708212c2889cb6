"""PostgreSQL implementation of the store: psycopg 3 on an async connection pool.

The repositories' SQL is shared with SQLite; what differs lives here:

- Parameters: ``:name`` becomes psycopg's ``%(name)s`` (and a literal ``%`` becomes ``%%``),
  translated once per statement text and cached. ``::`` casts, quoted strings and identifiers
  and ``--`` comments are left alone, so ``'10:30'`` is not a parameter.
- Connections: a pool whose ``check`` pings each connection as it is handed out, so after a
  server restart a caller gets a fresh connection instead of the dead one's error. Outside
  ``transaction()`` every statement autocommits, as on SQLite.
- Errors: a lost or unreachable server (``OperationalError``, a pool timeout) is the same
  ``StoreError`` SQLite raises, and a broken key or constraint the same ``ConstraintViolation``;
  programming errors (bad SQL) stay psycopg errors: they are bugs.
- Transactions are READ COMMITTED: a conditional ``UPDATE ... WHERE state = 'ready'`` waits
  for a concurrent writer of the row and then re-checks its condition, so the dialer's claim
  (row count 1 means the lead is ours) is as safe as under SQLite's single writer. It selects
  the lead to take with ``skip_locked`` (``FOR UPDATE SKIP LOCKED``): a lead another worker's
  claim holds until its commit is passed over, not waited for.
- Migrations run on one connection under a transaction-scoped advisory lock, so controllers
  starting together on one database apply each migration once.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from controller.logs import get_logger
from controller.store.base import Connection, ConstraintViolation, Params, Row, StoreError
from controller.store.migrations import apply_migrations
from controller.store.url import PostgresUrl

# How long a caller waits for a pooled connection (the server down or every connection busy)
# before StoreError: short enough for the API to answer 503 while the server restarts.
ACQUIRE_TIMEOUT_S = 5.0
PING_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 10
MIGRATION_LOCK_KEY = 0x63616C6C  # "call": pg_advisory_xact_lock key of schema migrations

log = get_logger("store")

_Raw = psycopg.AsyncConnection[DictRow]

# Skipped whole: quoted strings, quoted identifiers, line comments, ``::`` casts. Translated:
# ``:name`` and ``%``. (Dollar-quoted and E'' strings are not used by the repositories.)
_TOKEN = re.compile(
    r"""(?P<skip>'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|::)"""
    r"""|:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<percent>%)"""
)


@lru_cache(maxsize=2048)
def to_pyformat(sql: str) -> str:
    """``:name`` parameters as ``%(name)s``, every other ``%`` doubled (psycopg reads ``%``
    everywhere, inside strings too)."""

    def replace(match: re.Match[str]) -> str:
        if match["name"]:
            return f"%({match['name']})s"
        return match[0].replace("%", "%%")

    return _TOKEN.sub(replace, sql)


@contextmanager
def _store_errors(sql: str) -> Iterator[None]:
    try:
        yield
    except psycopg.IntegrityError as error:
        raise ConstraintViolation(str(error).strip()) from error
    except psycopg.OperationalError as error:
        verb = sql.split()[0] if sql.split() else sql
        raise StoreError(f"{str(error).strip() or type(error).__name__} (in: {verb})") from error


class _Conn:
    """One pooled connection, speaking the store's parameter style."""

    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, raw: _Raw) -> None:
        self.raw = raw

    async def execute(self, sql: str, params: Params = None) -> int:
        with _store_errors(sql):
            cursor = await self.raw.execute(to_pyformat(sql), dict(params or {}))
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        with _store_errors(sql):
            async with self.raw.cursor() as cursor:
                await cursor.executemany(to_pyformat(sql), [dict(r) for r in rows])

    async def fetchone(self, sql: str, params: Params = None) -> Row | None:
        with _store_errors(sql):
            cursor = await self.raw.execute(to_pyformat(sql), dict(params or {}))
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Params = None) -> list[Row]:
        with _store_errors(sql):
            cursor = await self.raw.execute(to_pyformat(sql), dict(params or {}))
            return list(await cursor.fetchall())

    async def iterate(self, sql: str, params: Params = None) -> AsyncIterator[Row]:
        """Rows fetched whole first: inside a transaction the caller may run other statements
        on this connection while it loops, which a streaming result would block."""
        for row in await self.fetchall(sql, params):
            yield row

    async def stream(self, sql: str, params: Params = None) -> AsyncIterator[Row]:
        """Rows as the server sends them, for a connection nothing else uses meanwhile."""
        with _store_errors(sql):
            async with self.raw.cursor() as cursor:
                async for row in cursor.stream(to_pyformat(sql), dict(params or {})):
                    yield row


class PostgresDatabase:
    skip_locked = _Conn.skip_locked
    def __init__(self, pool: AsyncConnectionPool[_Raw], url: PostgresUrl) -> None:
        self._pool = pool
        self.url = url

    @classmethod
    async def open(cls, url: PostgresUrl) -> PostgresDatabase:
        """Connect once (a refused login or a missing database is reported as it is, not as
        a pool timeout), bring the schema up to date, then open the pool."""
        settings = _connection_settings(url)
        try:
            async with await psycopg.AsyncConnection.connect(
                url.conninfo, connect_timeout=CONNECT_TIMEOUT_S, **settings
            ) as first, first.transaction():
                conn = _Conn(first)
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(:key)", {"key": MIGRATION_LOCK_KEY}
                )
                await apply_migrations(conn)
                await _warn_unless_byte_order(conn)
        except (psycopg.Error, StoreError, ConstraintViolation) as error:  # a failed migration too
            raise StoreError(f"cannot open store {url.redacted()}: {error}") from error
        pool: AsyncConnectionPool[_Raw] = AsyncConnectionPool(
            url.conninfo,
            connection_class=psycopg.AsyncConnection[DictRow],
            kwargs=settings,
            min_size=1,
            max_size=url.pool_max,
            timeout=ACQUIRE_TIMEOUT_S,
            check=AsyncConnectionPool.check_connection,
            name="callctl-store",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except BaseException as error:
            # cancelled too (a shutdown while the server is slow): a pool left connecting
            # would keep the event loop from ever finishing its cancelled tasks
            await pool.close()
            if isinstance(error, psycopg.OperationalError):
                raise StoreError(f"cannot open store {url.redacted()}: {error}") from error
            raise
        return cls(pool, url)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Conn]:
        with _store_errors("connect"):
            async with self._pool.connection() as raw:
                yield _Conn(raw)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._connection() as conn:
            with _store_errors("COMMIT"):
                async with conn.raw.transaction():
                    yield conn

    async def execute(self, sql: str, params: Params = None) -> int:
        async with self._connection() as conn:
            return await conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        async with self._connection() as conn:
            await conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = None) -> Row | None:
        async with self._connection() as conn:
            return await conn.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = None) -> list[Row]:
        async with self._connection() as conn:
            return await conn.fetchall(sql, params)

    async def iterate(self, sql: str, params: Params = None) -> AsyncIterator[Row]:
        async with self._connection() as conn:
            async for row in conn.stream(sql, params):
                yield row

    async def ping(self) -> bool:
        try:
            async with self._pool.connection(timeout=PING_TIMEOUT_S) as raw:
                await raw.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    async def close(self) -> None:
        await self._pool.close()


async def _warn_unless_byte_order(conn: _Conn) -> None:
    """Timestamps are fixed-width text and compare right under any collation, but names, ids
    and phones sort by language rules unless the database sorts bytes, as SQLite does."""
    # asked of the server rather than read from pg_database, whose columns differ between
    # libc and ICU collations and between major versions: bytes put 'B' (0x42) before 'a'
    row = await conn.fetchone("SELECT 'a' < 'B' AS by_language")
    if row is not None and row["by_language"]:
        log.warning(
            "store.collation_not_bytewise",
            hint="CREATE DATABASE ... LOCALE 'C.UTF-8' TEMPLATE template0 sorts as SQLite does",
        )


def _connection_settings(url: PostgresUrl) -> dict[str, Any]:
    return {
        "autocommit": True,
        "row_factory": dict_row,
        # None: never prepare, for a transaction-mode pooler; else psycopg's default of 5 uses
        "prepare_threshold": 5 if url.prepared_statements else None,
    }
