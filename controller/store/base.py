"""The store's interface: a small SQL database port, implemented on SQLite and PostgreSQL.

Domain repositories (calls, leads, recordings) are written against ``Database`` with portable SQL
and named parameters (``:name``); the PostgreSQL implementation translates the parameter style
and runs the same migrations (they avoid SQLite-only syntax). A transaction is the unit of
atomicity: a lead claim, a CSV import, a recording's metadata all commit or roll back whole.
Rows are mappings of column name to value. ``controller.store.open_store`` picks the
implementation from the URL.

Timestamps are stored as text in one shape, written by ``to_iso`` and read by ``from_iso``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

Row = Mapping[str, Any]
Params = Mapping[str, Any] | None


class Connection(Protocol):
    # What ends a SELECT in a transaction to lock the rows it returns and pass over rows
    # another transaction has locked, so concurrent claimers split rows instead of queueing
    # for them: " FOR UPDATE SKIP LOCKED" on PostgreSQL; "" on SQLite, where a transaction
    # holds the database's one write lock from its start (BEGIN IMMEDIATE).
    skip_locked: str

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
    """The store cannot be opened, migrated or written (unreachable, locked too long, full)."""


class ConstraintViolation(Exception):
    """A write broke a primary key, unique, foreign key or NOT NULL constraint: a conflict or
    a bug of the caller's, not an unavailable store."""


def to_iso(moment: datetime) -> str:
    """The store's one timestamp text: UTC with microseconds, ``2026-03-14T09:30:02.000000+00:00``.

    One fixed width in every column, so text order is time order in SQL (``ended_at >= :since``,
    ``ORDER BY started_at``). Microseconds because they are all a ``datetime`` holds: nothing is
    truncated, so ``from_iso(to_iso(t)) == t`` and a time compared in SQL compares as it does in
    Python (milliseconds would make two instants of one millisecond equal in SQL only).
    """
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_iso(text: str) -> datetime:
    """A stored timestamp back as an aware UTC ``datetime``."""
    return datetime.fromisoformat(text).astimezone(UTC)


def from_iso_or_none(text: str | None) -> datetime | None:
    """A timestamp that may be missing: NULL, or ``''`` where the column is NOT NULL."""
    return from_iso(text) if text else None


def listing_filter(
    equal: Mapping[str, str | None], moment_column: str, since: datetime | None,
    until: datetime | None,
) -> tuple[str, dict[str, Any]]:
    """The WHERE conditions of a listing: each column of ``equal`` with a value equals it, and
    ``moment_column`` is in ``[since, until)``; joined with AND ("1 = 1" when none), with
    their parameters. Column names are the caller's own constants, never user input."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for column, value in equal.items():
        if value is not None:
            clauses.append(f"{column} = :{column}")
            params[column] = value
    if since is not None:
        clauses.append(f"{moment_column} >= :since")
        params["since"] = to_iso(since)
    if until is not None:
        clauses.append(f"{moment_column} < :until")
        params["until"] = to_iso(until)
    return " AND ".join(clauses) or "1 = 1", params
