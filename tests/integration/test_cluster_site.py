"""The API of either controller answers for the whole site's queues (``testbed/cluster.py``).

Two controllers, one per node, on one PostgreSQL; the proxy spreads the carrier's callers over
both nodes (round robin), so each node's app_queue knows only its own share. Each controller
publishes its node's view once a second and merges the others' into ``/api/v1/queues``: both
APIs show every waiting caller. (No agent answers: the members' phones are not registered.)
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from controller.config import load_config
from testbed.cluster import Cluster
from testbed.sipp import SippPool

from .harness import Api, ControllerProcess, wait_for
from .test_cluster import NUMBER, QUEUE, cluster, pool, site

__all__ = ["cluster", "pool", "site"]  # the fixtures, shared with test_cluster

CALLERS = 4


def callers_on(site: Cluster) -> list[int]:
    """Callers waiting in the queue on each node, as its own app_queue says."""
    counts = []
    for node in site.nodes:
        found = re.search(r"has (\d+) calls", node.asterisk.cli(f"queue show {QUEUE}"))
        counts.append(int(found.group(1)) if found else 0)
    return counts


async def site_queue(api: Api) -> dict[str, Any]:
    status, body = await api.request("GET", "/api/v1/queues")
    assert status == 200, body
    [queue] = [q for q in body["queues"] if q["queue"] == QUEUE]
    return queue


async def test_either_controllers_api_shows_the_callers_waiting_on_every_node(
    site: Cluster, pool: SippPool, tmp_path: Path
) -> None:
    files = [node.controller_config for node in site.nodes]
    controllers = [ControllerProcess(file, tmp_path / f"controller{n}.log")
                   for n, file in enumerate(files, 1)]
    apis = [Api(load_config(file)) for file in files]
    callers = None
    try:
        for process, api in zip(controllers, apis, strict=True):
            process.start()
            await wait_for(api.healthy, 30, f"the controller of {process.config_file}")
        callers = pool.call(NUMBER, calls=CALLERS, rate=4, HOLD_MS="60000")
        await wait_for(lambda: sum(callers_on(site)) == CALLERS, 10, "the callers waiting",
                       every=0.2)
        per_node = callers_on(site)
        shown = [await wait_for(lambda api=api: _site_callers(api, CALLERS), 5,
                                "every caller in this API") for api in apis]
        for node in site.nodes:
            await asyncio.to_thread(node.asterisk.hang_up_all)
        gone = await wait_for(lambda: _site_callers(apis[1], 0), 10,
                              "the callers gone from the site's view once hung up")
    finally:
        if callers is not None:
            callers.stop()
        for process in controllers:
            process.stop()
    print(f"\nwaiting per node {per_node}; the APIs (callers, longest wait):"
          f" {[(q['callers'], q['longest_wait_s']) for q in shown]}")
    assert max(per_node) < CALLERS  # spread: no node's app_queue alone knows them all
    for queue in shown:
        assert queue["nodes"] == 2
        assert queue["longest_wait_s"] > 0
    assert gone["longest_wait_s"] == 0


async def _site_callers(api: Api, callers: int) -> dict[str, Any] | None:
    queue = await site_queue(api)
    return queue if queue["callers"] == callers else None
