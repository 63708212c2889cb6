"""The SQLite store: migrations once, atomic transactions, WAL."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.store import open_store
from controller.store.migrations import migration_files


async def test_migrations_apply_once(store_url: str) -> None:
    store = await open_store(store_url)
    versions = [r["version"] for r in await store.fetchall(
        "SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [v for v, _, _ in migration_files()]
    await store.close()
    again = await open_store(store_url)  # reopening applies nothing twice
    count = await again.fetchone("SELECT COUNT(*) AS n FROM schema_migrations")
    assert count is not None and count["n"] == len(versions)
    await again.close()


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/callctl.db")
    mode = await store.fetchone("PRAGMA journal_mode")
    await store.close()
    assert mode is not None and next(iter(mode.values())) == "wal"


async def test_transaction_rolls_back_whole(store_url: str) -> None:
    store = await open_store(store_url)
    row = {"id": "a1", "now": "2026-01-01T00:00:00Z"}
    insert = ("INSERT INTO agents (agent_id, interface, updated_at) "
              "VALUES (:id, 'PJSIP/' || :id, :now)")
    await store.execute(insert, row)
    with pytest.raises(RuntimeError):
        async with store.transaction() as conn:
            await conn.execute(insert, {**row, "id": "a2"})
            raise RuntimeError("boom")
    ids = [r["agent_id"] for r in await store.fetchall("SELECT agent_id FROM agents")]
    assert ids == ["a1"]
    assert await store.ping() is True
    await store.close()
