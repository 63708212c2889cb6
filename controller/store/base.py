"""The store's interface: a small SQL database port that SQLite implements today.

Domain repositories (calls, leads, recordings) are written against ``Database`` with portable SQL
and named parameters (``:name``); a PostgreSQL implementation translates the parameter style and
keeps the same migrations (they avoid SQLite-only syntax). A transaction is the unit of
atomicity: a lead claim, a CSV import, a recording's metadata all commit or roll back whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

Row = Mapping[str, Any]
Params = Mapping[str, Any] | None


class Connection(Protocol):
    async def execute(self, sql: str, params: Params = None) -> int:
        """Run one statement; return the number of rows changed."""

    async def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None: ...

    async def fetchone(self, sql: str, params: Params = None) -> Row | None: ...

    async def fetchall(self, sql: str, params: Params = None) -> list[Row]: ...

    def iterate(self, sql: str, params: Params = None) -> AsyncIterator[Row]: ...


class Database(Connection, Protocol):
    """A connection pool with transactions; outside ``transaction()`` each call autocommits."""

    def transaction(self) -> AbstractAsyncContextManager[Connection]: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class StoreError(Exception):
    """The store cannot be opened, migrated or written."""
