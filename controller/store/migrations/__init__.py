"""Versioned schema migrations: ``NNNN_name.sql`` files applied in order, once each.

Numbering by domain keeps parallel work from colliding: 0001-0099 core and inbound calls,
0100-0199 dialer, 0200-0299 recording. The SQL is portable, so SQLite and PostgreSQL run the
same files: natural keys (no AUTOINCREMENT or SERIAL), timestamps as fixed-shape text, flags as
INTEGER 0/1 (written as ints, never Python bools), DOUBLE PRECISION rather than REAL (4 bytes
on PostgreSQL, 8 on SQLite), no ``INSERT OR ...``, ``datetime()`` or ``rowid``. A migration
that cannot be portable would go in per-dialect files; none needs to yet.
"""

from __future__ import annotations

from importlib import resources

from controller.store.base import Connection, StoreError


def migration_files() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` for every migration shipped in this package, in order."""
    found = []
    for entry in resources.files(__package__).iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        version = int(name.split("_", 1)[0])
        found.append((version, name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise StoreError(f"duplicate migration versions: {versions}")
    return found


async def apply_migrations(conn: Connection) -> list[str]:
    """Apply the migrations not yet recorded; runs inside the caller's transaction."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    )
    done = {r["version"] for r in await conn.fetchall("SELECT version FROM schema_migrations")}
    applied = []
    for version, name, sql in migration_files():
        if version in done:
            continue
        for statement in _statements(sql):
            await conn.execute(statement)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (:v, :n)",
            {"v": version, "n": name},
        )
        applied.append(name)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration on ``;`` at line ends (migrations hold no triggers or string ``;``)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().strip(";")]
