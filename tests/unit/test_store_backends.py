"""One store protocol, two backends: what must hold on both, and PostgreSQL's own parts
(parameter translation, pool recovery, error mapping, prepared statements, migration lock)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from psycopg import sql
from structlog.testing import capture_logs

from controller.store import open_store
from controller.store.base import ConstraintViolation, Database, StoreError
from controller.store.migrations import migration_files
from controller.store.postgres import to_pyformat
from controller.store.url import PostgresUrl, SqliteUrl, parse_store_url
from testbed.postgres import PostgresCluster

AGENT = (
    "INSERT INTO agents (agent_id, interface, updated_at)"
    " VALUES (:id, 'PJSIP/' || :id, '2026-03-14T09:30:02.000000+00:00')"
)


# --- on both backends ---------------------------------------------------------------------------


async def test_rows_are_mappings_of_plain_values(store: Database) -> None:
    await store.execute(AGENT, {"id": "a1"})
    row = await store.fetchone(
        "SELECT agent_id, logged_in, (SELECT COUNT(*) FROM agents) AS n FROM agents"
    )
    assert row == {"agent_id": "a1", "logged_in": 0, "n": 1}
    assert await store.fetchone("SELECT agent_id FROM agents WHERE agent_id = 'nobody'") is None


async def test_fractional_seconds_come_back_exactly(store: Database) -> None:
    # PostgreSQL's REAL would keep 4 bytes: 12.345 would read back as 12.345000267...
    await store.execute(
        "INSERT INTO recordings (call_id, direction, policy, status, path, started_at,"
        " duration_seconds) VALUES ('c1', 'inbound', 'all', 'complete', 'c1.wav', 'x', :d)",
        {"d": 12.345},
    )
    row = await store.fetchone("SELECT duration_seconds FROM recordings")
    assert row is not None and row["duration_seconds"] == 12.345


async def test_a_broken_key_is_a_constraint_violation(store: Database) -> None:
    await store.execute(AGENT, {"id": "a1"})
    with pytest.raises(ConstraintViolation):
        await store.execute(AGENT, {"id": "a1"})
    with pytest.raises(ConstraintViolation):
        await store.execute(
            "INSERT INTO agent_queues (agent_id, queue) VALUES ('ghost', 'sales')"
        )
    assert await store.ping() is True  # the store is fine: only that write was refused


async def test_rows_changed_and_executemany(store: Database) -> None:
    await store.executemany(AGENT, [{"id": f"a{n}"} for n in range(5)])
    await store.executemany(AGENT, [])  # nothing to write is not an error
    changed = await store.execute(
        "UPDATE agents SET paused = 1 WHERE agent_id IN ('a1', 'a2', 'zz')"
    )
    assert changed == 2


async def test_iterating_inside_a_transaction_allows_other_statements(store: Database) -> None:
    await store.executemany(AGENT, [{"id": f"a{n}"} for n in range(5)])
    async with store.transaction() as conn:
        async for row in conn.iterate("SELECT agent_id FROM agents ORDER BY agent_id"):
            await conn.execute(
                "UPDATE agents SET name = :name WHERE agent_id = :id",
                {"name": row["agent_id"].upper(), "id": row["agent_id"]},
            )
    names = [r["name"] for r in await store.fetchall("SELECT name FROM agents ORDER BY name")]
    assert names == ["A0", "A1", "A2", "A3", "A4"]


async def test_a_loop_left_early_gives_its_connection_back(store: Database) -> None:
    await store.executemany(AGENT, [{"id": f"a{n:03d}"} for n in range(300)])
    for _ in range(15):  # more loops than the pool has connections
        rows = store.iterate("SELECT agent_id FROM agents ORDER BY agent_id")
        async for row in rows:
            assert row["agent_id"] == "a000"
            break
        await rows.aclose()  # type: ignore[attr-defined]
    assert (await store.fetchone("SELECT COUNT(*) AS n FROM agents")) == {"n": 300}


async def test_percent_and_colons_in_sql_text_are_not_parameters(store: Database) -> None:
    await store.execute(AGENT, {"id": "a%1"})
    row = await store.fetchone(
        "SELECT agent_id, '10:30' AS at FROM agents WHERE agent_id LIKE 'a%' AND agent_id = :id",
        {"id": "a%1"},
    )
    assert row == {"agent_id": "a%1", "at": "10:30"}


# --- URLs ---------------------------------------------------------------------------------------


def test_urls_name_their_backend_and_options() -> None:
    assert parse_store_url("sqlite:///var/callctl.db") == SqliteUrl(Path("var/callctl.db"))
    assert parse_store_url("sqlite:////srv/c.db") == SqliteUrl(Path("/srv/c.db"))
    url = parse_store_url(
        "postgresql://callctl:s3cret@db:6432/callctl?sslmode=disable&prepared_statements=off"
        "&pool_max=4"
    )
    assert url == PostgresUrl("postgresql://callctl:s3cret@db:6432/callctl?sslmode=disable", 4,
                              prepared_statements=False)
    assert isinstance(url, PostgresUrl) and "s3cret" not in url.redacted()
    assert parse_store_url("postgres://h/db") == PostgresUrl("postgres://h/db")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://h/db", "unsupported store URL scheme 'mysql'"),
        ("callctl.db", "unsupported store URL scheme 'callctl.db'"),
        ("sqlite:///", "needs a file path"),
        ("postgresql://h", "needs a database name"),
        ("postgresql://h/db?pool_max=zero", "pool_max must be"),
        ("postgresql://h/db?prepared_statements=maybe", "prepared_statements must be on or off"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_store_url(url)


async def test_opening_a_bad_url_is_a_store_error_naming_store_url() -> None:
    with pytest.raises(StoreError, match=r"store\.url: unsupported store URL scheme"):
        await open_store("mysql://h/db")


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE a = :a AND b = :b_2",
         "SELECT * FROM t WHERE a = %(a)s AND b = %(b_2)s"),
        ("SELECT :a::text, x::int", "SELECT %(a)s::text, x::int"),
        ("SELECT ':a', 'it''s :b', \"col:c\" FROM t", "SELECT ':a', 'it''s :b', \"col:c\" FROM t"),
        ("SELECT 1 -- :a is not here\n, :b", "SELECT 1 -- :a is not here\n, %(b)s"),
        ("SELECT 5 % 2, 'a%' LIKE :p", "SELECT 5 %% 2, 'a%%' LIKE %(p)s"),
        ("SELECT :a, :a", "SELECT %(a)s, %(a)s"),
    ],
)
def test_named_parameters_become_pyformat(sql: str, expected: str) -> None:
    assert to_pyformat(sql) == expected


async def test_casts_work_next_to_parameters(postgres_cluster: PostgresCluster) -> None:
    store = await open_store(postgres_cluster.create_database("casts"))
    try:
        row = await store.fetchone("SELECT :n::int + 1 AS n, 'x'::text AS t", {"n": "41"})
    finally:
        await store.close()
    assert row == {"n": 42, "t": "x"}


async def test_server_restart_costs_callers_no_error(postgres_cluster: PostgresCluster) -> None:
    store = await open_store(postgres_cluster.create_database("restart") + "?pool_max=3")
    try:
        await store.execute(AGENT, {"id": "before"})
        await asyncio.to_thread(postgres_cluster.restart)
        # every pooled connection died with the server: each is checked and replaced
        for n in range(5):
            await store.execute(AGENT, {"id": f"after{n}"})
        count = await store.fetchone("SELECT COUNT(*) AS n FROM agents")
        assert count == {"n": 6}
        assert await store.ping() is True
    finally:
        await store.close()


async def test_a_connection_lost_mid_transaction_is_a_store_error(
    postgres_cluster: PostgresCluster,
) -> None:
    store = await open_store(postgres_cluster.create_database("lost"))
    watcher = await open_store(postgres_cluster.url())
    try:
        with pytest.raises(StoreError, match="in: INSERT"):
            async with store.transaction() as conn:
                mine = await conn.fetchone("SELECT pg_backend_pid() AS pid")
                assert mine is not None
                await watcher.execute("SELECT pg_terminate_backend(:pid)", {"pid": mine["pid"]})
                await conn.execute(AGENT, {"id": "a1"})
        await store.execute(AGENT, {"id": "a2"})  # the next caller gets a live connection
        rows = await store.fetchall("SELECT agent_id FROM agents")
        assert rows == [{"agent_id": "a2"}]
    finally:
        await watcher.close()
        await store.close()


async def test_an_unreachable_server_is_a_store_error_without_the_password(
    postgres_cluster: PostgresCluster,
) -> None:
    port = postgres_cluster.port + 1  # nothing listens there
    with pytest.raises(StoreError, match=r"cannot open store postgresql://u:\*\*\*@") as caught:
        await open_store(f"postgresql://u:hunter2@127.0.0.1:{port}/db")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(StoreError, match='database "missing" does not exist'):
        await open_store(postgres_cluster.url("missing"))


@pytest.mark.parametrize(("option", "prepared"), [("", True), ("?prepared_statements=off", False)])
async def test_prepared_statements_can_be_switched_off(
    postgres_cluster: PostgresCluster, option: str, prepared: bool
) -> None:
    url = postgres_cluster.create_database(f"prepared_{int(prepared)}") + option
    store = await open_store(url)
    try:
        async with store.transaction() as conn:  # one connection: prepared statements are its
            for n in range(8):
                await conn.fetchone("SELECT :n::int AS n", {"n": n})
            rows = await conn.fetchall("SELECT statement FROM pg_prepared_statements")
    finally:
        await store.close()
    assert any("SELECT $1::int AS n" in row["statement"] for row in rows) is prepared


async def test_controllers_starting_together_migrate_once(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.create_database("together")  # empty: nothing migrated yet
    opened = await asyncio.wait_for(
        asyncio.gather(*(open_store(url) for _ in range(3)), return_exceptions=True), 30
    )
    stores = [store for store in opened if not isinstance(store, BaseException)]
    try:
        assert len(stores) == 3, opened
        rows = await stores[0].fetchall("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        for store in stores:
            await store.close()
    assert [r["version"] for r in rows] == [v for v, _, _ in migration_files()]


async def test_a_database_sorting_by_language_rules_is_pointed_out(
    postgres_cluster: PostgresCluster,
) -> None:
    postgres_cluster.execute(sql.SQL(
        "CREATE DATABASE by_language TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
    ))
    with capture_logs() as logs:
        await (await open_store(postgres_cluster.url("by_language"))).close()
        await (await open_store(postgres_cluster.create_database("by_bytes"))).close()
    assert [entry["event"] for entry in logs] == ["store.collation_not_bytewise"]
