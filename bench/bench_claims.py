"""Lead claims per second with 1, 2 and 4 dialer workers sharing one campaign, on SQLite and on
PostgreSQL.

Each worker is its own process with its own store connection(s), as separate dialing hosts
would be; they start together and call ``DialerRepository.claim`` for batches of
``BATCH`` leads until the campaign has none left. The claim selects due leads, then takes each
with a conditional ``UPDATE ... WHERE state = 'ready'`` (on PostgreSQL through a ``FOR UPDATE
SKIP LOCKED`` select: a lead another worker's claim holds is passed over, not waited for), an
attempt row each, one transaction per batch. PostgreSQL runs in a
private cluster (``var/postgres-bench-PID``) with the server's default durability (fsync,
synchronous commit); SQLite is WAL with ``synchronous=NORMAL``, as the store opens it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from bench.common import Table
from controller.dialer.leads import Lead
from controller.dialer.repository import DialerRepository
from controller.dialer.settings import CampaignSettings
from controller.store import open_store
from controller.store.base import StoreError
from testbed.asterisk import test_slot
from testbed.postgres import bench_port, session_cluster

LEADS = 2000
BATCH = 10
WORKERS = (1, 2, 4)
CAMPAIGN = "bench"
NOON_NY = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # inside calling hours in New York
Outcome = tuple[list[str], int, float]  # phones claimed, claims failed, when it finished
SETTINGS = CampaignSettings.model_validate(
    {"trunk": "trunk", "caller_id": "+12125550100", "agents": {"queue": "sales"}}
)


async def _seed(url: str) -> None:
    store = await open_store(url)
    try:
        repo = DialerRepository(store)
        await repo.create_campaign(CAMPAIGN, SETTINGS, NOON_NY)
        await repo.change_state(CAMPAIGN, "start", NOON_NY)
        leads = [Lead(f"+1212{n:07d}", timezone="America/New_York") for n in range(LEADS)]
        await repo.import_leads(CAMPAIGN, leads, NOON_NY)
    finally:
        await store.close()


async def _claim_until_empty(url: str, worker: str, start: Barrier) -> Outcome:
    """Phones this worker claimed, claims that failed, and when it finished."""
    store = await open_store(url)
    phones: list[str] = []
    errors = 0
    try:
        repo = DialerRepository(store)
        await asyncio.to_thread(start.wait)  # all connected: the clock starts for all at once
        while True:
            try:
                batch = await repo.claim(CAMPAIGN, BATCH, worker, NOON_NY)
            except StoreError:  # e.g. a deadlock PostgreSQL broke by aborting this claim
                errors += 1
                continue
            if not batch:
                return phones, errors, time.perf_counter()
            phones += [attempt.phone for attempt in batch]
    finally:
        await store.close()


def _worker(url: str, name: str, start: Barrier, results: Queue[Outcome]) -> None:
    results.put(asyncio.run(_claim_until_empty(url, name, start)))


def _race(url: str, workers: int) -> dict[str, object]:
    asyncio.run(_seed(url))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers + 1)
    results: Queue[Outcome] = context.Queue()
    processes = [
        context.Process(target=_worker, args=(url, f"w{n}", barrier, results))
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join()
    seconds = max(finished for _, _, finished in outcomes) - started
    claimed = [phone for phones, _, _ in outcomes for phone in phones]
    return {
        "workers": workers,
        "leads claimed": len(claimed),
        "claimed twice": len(claimed) - len(set(claimed)),
        "failed claims": sum(errors for _, errors, _ in outcomes),
        "seconds": round(seconds, 3),
        "claims/s": round(len(claimed) / seconds),
    }


def run() -> Table:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-claims-") as tmp:
        for workers in WORKERS:
            url = f"sqlite:///{Path(tmp) / f'claims-{workers}.db'}"
            rows.append({"backend": "sqlite", **_race(url, workers)})
    cluster = session_cluster("bench", bench_port(test_slot()))
    cluster.start()
    try:
        for workers in WORKERS:
            url = cluster.create_database(f"claims_{workers}")
            rows.append({"backend": "postgresql", **_race(url, workers)})
    finally:
        cluster.stop()
    columns = list(rows[0])
    return Table(
        f"Lead claims per second: {LEADS} due leads, batches of {BATCH}, one process per worker",
        columns,
        [[row[column] for column in columns] for row in rows],
        notes=[
            "claims/s counts leads claimed (each with its attempt row committed) per second of"
            " the slowest worker; 'claimed twice' must stay 0.",
            "claim: a conditional UPDATE per lead; on PostgreSQL through FOR UPDATE SKIP LOCKED"
            " (a lead another worker's claim holds is passed over, not waited for).",
        ],
    )
