"""Fixtures shared by unit and integration tests.

Store tests run once per backend: ``store_url`` (and ``store``, opened on it) is parametrized
over ``sqlite`` and ``postgresql``. Each PostgreSQL test gets its own new database, a copy of
one migrated once per session (copying, about 0.05 s, is cheaper than migrating), in one
cluster per session, ``postgres_cluster``, started on first use in ``var/postgres-testN-PID``
on the port of test slot N (``CALLCTL_TEST_SLOT``; another free port if a session beside
this one holds it) and stopped at session end; an atexit guard stops it too if the
interpreter exits without running fixture teardown. Every test that needs the cluster is marked
``postgresql``: ``-m 'not postgresql'`` runs the rest without starting it.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from controller.store import open_store
from controller.store.base import Database
from testbed.asterisk import SLOT_ENV, test_slot
from testbed.postgres import TEST_SETTINGS, PostgresCluster, session_cluster, test_port
from testbed.signals import interrupt_on_ctrl_c_and_sigterm

BACKENDS = ("sqlite", "postgresql")
MIGRATED_TEMPLATE = "callctl_migrated"
_CLUSTERS: list[PostgresCluster] = []
_DATABASE_NUMBERS = itertools.count(1)


@atexit.register
def _leave_no_cluster_running() -> None:
    for cluster in _CLUSTERS:
        cluster.stop()


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist worker gwK runs in slot base+K (base: CALLCTL_TEST_SLOT), so two workers'
    # Asterisk instances, sipp peers, clusters and demo instances never share a port or a name.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is not None:
        os.environ[SLOT_ENV] = str(test_slot() + int(worker.removeprefix("gw")))
        test_slot()  # refuses a slot past the last one, naming the variable
    # a run stopped with SIGTERM (timeout, a cancelled CI job) ends as Ctrl-C ends it, in each
    # worker too: the fixtures' teardown stops the Asterisk, PostgreSQL and Kamailio they
    # started. Left to Python's default, SIGTERM ended the run at once and left them running,
    # on the ports the next run wants.
    interrupt_on_ctrl_c_and_sigterm()
    config.addinivalue_line(
        "markers", "postgresql: runs on the session's PostgreSQL cluster (-m 'not postgresql')"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("store_url") == "postgresql"
        if on_postgres or "postgres_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgresql)


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    """A private stand-in for the checkout's ``var/`` (state, databases, rendered configs)."""
    path = tmp_path / "var"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """The session's PostgreSQL cluster (fresh initdb, durability off: it is thrown away)."""
    slot = test_slot()
    cluster = session_cluster(f"test{slot}", test_port(slot), TEST_SETTINGS)
    _CLUSTERS.append(cluster)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        _CLUSTERS.remove(cluster)


@pytest.fixture(scope="session")
def postgres_migrated_template(postgres_cluster: PostgresCluster) -> str:
    """A database with every migration applied, the template of each test's database."""

    async def migrate(url: str) -> None:
        await (await open_store(url)).close()

    asyncio.run(migrate(postgres_cluster.create_database(MIGRATED_TEMPLATE)))
    return MIGRATED_TEMPLATE


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new store, schema migrated: a SQLite file (migrated when first opened), or
    a new PostgreSQL database. ``postgres_cluster.create_database(name)`` gives an empty one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    template: str = request.getfixturevalue("postgres_migrated_template")
    return cluster.create_database(f"test_{next(_DATABASE_NUMBERS)}", template)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Database]:
    """A store opened (schema migrated) on ``store_url``, closed after the test."""
    db = await open_store(store_url)
    try:
        yield db
    finally:
        await db.close()
