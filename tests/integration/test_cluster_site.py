"""One site over two nodes (``testbed/cluster.py``): two controllers, one per node, on one
PostgreSQL.

- The API of either controller answers for the whole site's queues: the proxy spreads the
  carrier's callers over both nodes (round robin), so each node's app_queue knows only its own
  share; each controller publishes its node's view once a second and merges the others' into
  ``/api/v1/queues``. (No agent answers: the members' phones are not registered.)
- An agent logged in, paused and logged out through one controller is so on both nodes: the
  other controller follows the store; one that was down meanwhile removes the outdated member
  at its start instead of adopting it back.
"""

from __future__ import annotations

import asyncio
import functools
import re
from pathlib import Path
from typing import Any

from controller.config import load_config
from testbed.cluster import Cluster
from testbed.sipp import SippPool

from .harness import Api, ControllerProcess, wait_for
from .test_cluster import NUMBER, QUEUE, cluster, pool, site
from .test_inbound import login

__all__ = ["cluster", "pool", "site"]  # the fixtures, shared with test_cluster

CALLERS = 4
AGENT = "1003"  # not one the site fixture adds at the CLI


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
        shown = [await wait_for(functools.partial(_site_callers, api, CALLERS), 5,
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


def member_on(site: Cluster, agent: str) -> list[str]:
    """How each node's app_queue has ``agent`` in the queue: "", "member" or "paused"."""
    shown = []
    for node in site.nodes:
        line = next((line for line in node.asterisk.cli(f"queue show {QUEUE}").splitlines()
                     if f"(PJSIP/{agent})" in line or f"PJSIP/{agent} " in line), "")
        shown.append("" if not line else "paused" if "(paused" in line else "member")
    return shown


async def test_an_agents_login_pause_and_logout_through_one_controller_hold_on_both_nodes(
    site: Cluster, tmp_path: Path
) -> None:
    files = [node.controller_config for node in site.nodes]
    first, second = (ControllerProcess(file, tmp_path / f"controller{n}.log")
                     for n, file in enumerate(files, 1))
    apis = [Api(load_config(file)) for file in files]
    try:
        for process, api in ((first, apis[0]), (second, apis[1])):
            process.start()
            await wait_for(api.healthy, 30, f"the controller of {process.config_file}")
        await login(apis[0], AGENT, QUEUE)
        await wait_for(lambda: member_on(site, AGENT) == ["member", "member"], 5,
                       "the login through node 1's controller on both nodes")
        status, body = await apis[1].request("POST", f"/api/v1/agents/{AGENT}/pause",
                                             {"reason": "lunch"})
        assert status == 200, body
        await wait_for(lambda: member_on(site, AGENT) == ["paused", "paused"], 5,
                       "the pause through node 2's controller on both nodes")
        second.stop()
        status, body = await apis[0].request("POST", f"/api/v1/agents/{AGENT}/logout")
        assert status == 200, body
        await wait_for(lambda: member_on(site, AGENT)[0] == "", 5, "the logout on node 1")
        assert member_on(site, AGENT)[1] == "paused"  # nobody there to follow the store
        second.start()
        await wait_for(apis[1].healthy, 30, "node 2's controller back")
        await wait_for(lambda: member_on(site, AGENT) == ["", ""], 5,
                       "node 2's outdated member removed at its controller's start")
        status, body = await apis[1].request("GET", "/api/v1/agents")
        assert status == 200, body
        [stored] = [a for a in body["agents"] if a["agent_id"] == AGENT]
        assert stored["logged_in"] is False  # not adopted back
    finally:
        for process in (first, second):
            process.stop()
