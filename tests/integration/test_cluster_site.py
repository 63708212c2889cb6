"""One site over two nodes (``testbed/cluster.py``): two controllers, one per node, on one
PostgreSQL.

- The API of either controller answers for the whole site's queues: the proxy spreads the
  carrier's callers over both nodes (round robin), so each node's app_queue knows only its own
  share; each controller publishes its node's view once a second and merges the others' into
  ``/api/v1/queues``. (No agent answers: the members' phones are not registered.)
- An agent logged in, paused and logged out through one controller is so on both nodes: the
  other controller follows the store; one that was down meanwhile removes the outdated member
  at its start instead of adopting it back.
- An agent's wrap-up ended through the controller of the node its call was not on (its ``*47``
  reached that node: the proxy spreads an agent's calls) ends where the call was.
- An agent on a call on one node, and in wrap-up after it, is offered no call by the other node
  either (its controller holds the agent there) until the wrap-up ends.
- A call the agent placed itself (an outside line) holds it on the other node while it is up,
  from its node's view alone (no call row is stored for it).
- A blended agent, seated on a campaign's nailed-up line by one node's dialer worker, is held
  busy in the queue on the other node while the line is up, and let go once the campaign
  stops (through the other node's controller).
- A supervisor's ``*51`` that reaches the node without the agent's call goes on to the node
  that has it.
- A Prometheus scraping both controllers, as on a site, evaluates every dashboard and rule
  expression, and the panels show the site's callers and agents once.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
import tomllib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from controller.config import load_config
from controller.metrics.queries import all_queries, panel_exprs
from controller.state.model import BUSY_HOLD_REASON, WRAPUP_HOLD_REASON
from controller.store.base import from_iso, to_iso
from testbed import prometheus
from testbed.asterisk import REPO_DIR
from testbed.cluster import Cluster
from testbed.sipp import CARRIER_IP, SippPool

from .harness import Api, ControllerProcess, wait_for
from .test_cluster import AGENTS, NUMBER, OUTSIDE, QUEUE, cluster, pool, register_agents, site
from .test_dialer import acli, campaign_toml, phone, setup_campaign, store_rows, zone_at_local_hour
from .test_inbound import login
from .test_prometheus import Query

__all__ = ["cluster", "pool", "site"]  # the fixtures, shared with test_cluster

CALLERS = 4
AGENT = "1003"  # not one the site fixture adds at the CLI
SUPERVISOR = "1003"  # of team support, the site fixture's agents' team


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


@asynccontextmanager
async def both_controllers(site: Cluster, logs: Path) -> AsyncIterator[list[Api]]:
    """A controller for each node, healthy, stopped on the way out; their APIs."""
    files = [node.controller_config for node in site.nodes]
    controllers = [ControllerProcess(file, logs / f"controller{n}.log")
                   for n, file in enumerate(files, 1)]
    apis = [Api(load_config(file)) for file in files]
    try:
        for process, api in zip(controllers, apis, strict=True):
            process.start()
            await wait_for(api.healthy, 30, f"the controller of {process.config_file}")
        yield apis
    finally:
        for process in controllers:
            process.stop()


async def test_either_controllers_api_shows_the_callers_waiting_on_every_node(
    site: Cluster, pool: SippPool, tmp_path: Path
) -> None:
    callers = None
    try:
        async with both_controllers(site, tmp_path) as apis:
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
    print(f"\nwaiting per node {per_node}; the APIs (callers, longest wait):"
          f" {[(q['callers'], q['longest_wait_s']) for q in shown]}")
    assert max(per_node) < CALLERS  # spread: no node's app_queue alone knows them all
    for queue in shown:
        assert queue["nodes"] == 2
        assert queue["longest_wait_s"] > 0
    assert gone["longest_wait_s"] == 0


async def test_prometheus_scraping_both_controllers_shows_the_site_once(
    site: Cluster, pool: SippPool, tmp_path: Path
) -> None:
    """Each controller exports its node's gauges; the panels and rules add them up: callers
    summed over the nodes, the paused agents (members on both nodes) counted once, the
    recording rules healthy (no many-to-many matching of two controllers' series)."""
    callers = None
    async with both_controllers(site, tmp_path) as apis:
        ports = [load_config(node.controller_config).http.port for node in site.nodes]
        server = await asyncio.to_thread(
            prometheus.start, {"callctl": [f"127.0.0.1:{port}" for port in ports]},
            tmp_path / "prometheus")

        async def query(expr: str) -> list[dict[str, Any]]:
            return await asyncio.to_thread(server.query, expr)

        # the wallboard with QUEUE picked in its queue variable
        panels = {key: expr.replace('queue=~".*"', f'queue=~"{QUEUE}"')
                  for key, expr in panel_exprs(REPO_DIR).items()}
        try:
            for agent in AGENTS:
                await _set_paused(apis[0], agent, True)
            await wait_for(lambda: all(member_on(site, agent) == ["paused", "paused"]
                                       for agent in AGENTS), 5, "the agents paused on both nodes")
            callers = pool.call(NUMBER, calls=CALLERS, rate=4, HOLD_MS="60000")
            await wait_for(lambda: sum(callers_on(site)) == CALLERS, 10, "the callers waiting",
                           every=0.2)
            per_node = callers_on(site)
            waiting = await wait_for(
                lambda: _one_value(query, panels["inbound", "Callers waiting"], CALLERS), 20,
                "Prometheus's site callers")
            agents = {s["metric"]["state"]: float(s["value"][1])
                      for s in await query(panels["inbound", "Agents by state"])}
            unstaffed = await wait_for(lambda: query("callctl:queue_open_unstaffed:bool"), 20,
                                       "the unstaffed rule evaluated")
            unevaluated = [q.where for q in all_queries(REPO_DIR)
                           if await _fails(query, q.expr)]
            rules = await asyncio.to_thread(server.rules)
        finally:
            server.stop()
            if callers is not None:
                callers.stop()
            for agent in AGENTS:
                await _set_paused(apis[0], agent, False)
    print(f"\ncallers per node {per_node}; Prometheus: callers {waiting}, agents {agents}")
    assert min(per_node) >= 1  # each controller has some of them
    assert agents["paused"] == len(AGENTS)  # not once per controller
    # one result per queue, not one per controller
    assert sorted(s["metric"]["queue"] for s in unstaffed) == sorted(
        load_config(site.nodes[0].controller_config).inbound.queues)
    assert unevaluated == []
    assert [(r["name"], r["health"], r.get("lastError")) for r in rules
            if r["health"] != "ok"] == []


async def _one_value(query: Query, expr: str, value: float) -> list[dict[str, Any]] | None:
    """The series of ``expr`` once it is a single one of ``value``."""
    series = await query(expr)
    return series if [float(s["value"][1]) for s in series] == [value] else None


async def _fails(query: Query, expr: str) -> bool:
    try:
        await query(expr)
    except prometheus.PrometheusError:
        return True
    return False


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


def held_on(site: Cluster, agent: str) -> list[str]:
    """The reason each node's app_queue has ``agent`` paused with in the queue ("": none)."""
    reasons = []
    for node in site.nodes:
        line = next((line for line in node.asterisk.cli(f"queue show {QUEUE}").splitlines()
                     if f"(PJSIP/{agent})" in line or f"PJSIP/{agent} " in line), "")
        found = re.search(r"\(paused:([^ )]+)", line)
        reasons.append(found.group(1) if found else "")
    return reasons


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


WRAPUP_S = 120  # far longer than the test: only an early end can end it
HELD_LOOK_S = 3.0  # callers wait this long on both nodes, 1001 in wrap-up and 1002 paused
HELD_TALK_MS = 5000  # the busy hold comes within about 0.7 s of the answer: seen while it talks


@contextmanager
def queue_wrapup(site: Cluster, seconds: int) -> Iterator[None]:
    """QUEUE's wrap-up ``seconds`` on every node (its app_queue and its controller's config)
    for the test; as it was after."""
    texts = [node.controller_config.read_text() for node in site.nodes]
    try:
        for node, text in zip(site.nodes, texts, strict=True):
            data = tomllib.loads(text)
            data["inbound"]["queues"][QUEUE]["wrapup"] = seconds
            node.controller_config.write_text(tomli_w.dumps(data))
            node.asterisk.install_inbound(load_config(node.controller_config).inbound)
        yield
    finally:
        for node, text in zip(site.nodes, texts, strict=True):
            node.controller_config.write_text(text)
            node.asterisk.install_inbound(load_config(node.controller_config).inbound)


async def test_a_wrap_up_ended_through_the_other_node_s_controller_ends_where_the_call_was(
    site: Cluster, pool: SippPool, tmp_path: Path
) -> None:
    caller = None
    with queue_wrapup(site, WRAPUP_S):
        try:
            async with both_controllers(site, tmp_path) as apis:
                register_agents(pool, site)
                pool.agent_phones(RING_S="0", TALK_MS="1000")  # the agent hangs up after 1 s
                since = to_iso(datetime.now(UTC))
                caller = pool.call(NUMBER, HOLD_MS="30000")
                config = load_config(site.nodes[0].controller_config)
                [call] = await wait_for(functools.partial(_answered_calls, config, since), 30,
                                        "the call answered and hung up by its agent")
                agent = call["agent_id"]
                there = [node.worker_id for node in site.nodes].index(call["node"])
                await wait_for(lambda: _agent_state(apis[there], agent, "wrapup"), 5,
                               f"{agent} in wrap-up after its call on node {there + 1}")
                asked = time.monotonic()
                status, body = await apis[1 - there].request(
                    "POST", f"/api/v1/agents/{agent}/end-wrapup")
                assert status == 200, body
                await wait_for(lambda: _agent_state(apis[there], agent, "available"), 5,
                               f"{agent}'s wrap-up ended on node {there + 1}")
                ended_s = time.monotonic() - asked
                status, body = await apis[1 - there].request(
                    "POST", "/api/v1/agents/1004/end-wrapup")
        finally:
            if caller is not None:
                caller.stop()
    print(f"\n{agent}'s call on node {there + 1}, its wrap-up ended through node"
          f" {2 - there}'s controller: over on node {there + 1} {ended_s:.2f} s later")
    assert (status, body["error"]) == (409, "agent 1004: not logged in")


async def test_an_agent_on_a_call_or_in_wrap_up_on_one_node_gets_no_call_from_the_other(
    site: Cluster, pool: SippPool, tmp_path: Path
) -> None:
    callers = []
    with queue_wrapup(site, WRAPUP_S):
        try:
            async with both_controllers(site, tmp_path) as apis:
                register_agents(pool, site)
                await _set_paused(apis[0], "1002", True)  # 1001 alone takes the queue's calls
                await wait_for(lambda: member_on(site, "1002") == ["paused", "paused"], 5,
                               "1002 paused on both nodes")
                try:
                    pool.agent_phones(RING_S="0", TALK_MS=str(HELD_TALK_MS))
                    since = to_iso(datetime.now(UTC))
                    callers.append(pool.call(NUMBER, HOLD_MS="60000"))
                    config = load_config(site.nodes[0].controller_config)
                    [up] = await wait_for(functools.partial(_talking_calls, config), 30,
                                          "the call answered by 1001")
                    there = [node.worker_id for node in site.nodes].index(up["node"])
                    other = 1 - there
                    await wait_for(lambda: held_on(site, "1001")[other] == BUSY_HOLD_REASON, 5,
                                   f"1001 held on node {other + 1} while it talks on {there + 1}")
                    busy_s = time.time() - from_iso(up["answered_at"]).timestamp()
                    [call] = await wait_for(functools.partial(_answered_calls, config, since), 10,
                                            "the call hung up by 1001")
                    await wait_for(lambda: held_on(site, "1001")[other] == WRAPUP_HOLD_REASON, 5,
                                   f"1001 held on node {other + 1} for its wrap-up")
                    held_s = time.time() - from_iso(call["ended_at"]).timestamp()
                    callers.append(pool.call(NUMBER, calls=2, rate=2, HOLD_MS="60000"))
                    await wait_for(lambda: sum(callers_on(site)) == 2, 10, "two callers waiting")
                    waiting = callers_on(site)
                    await asyncio.sleep(HELD_LOOK_S)
                    still = callers_on(site), len(await _answered_calls(config, since))
                    # through the call's node: the hold ends by the end stored there
                    status, body = await apis[there].request(
                        "POST", "/api/v1/agents/1001/end-wrapup")
                    assert status == 200, body
                    asked = time.monotonic()
                    await wait_for(lambda: member_on(site, "1001")[other] == "member", 5,
                                   f"1001 let go on node {other + 1}")
                    released_s = time.monotonic() - asked
                    await wait_for(lambda: sum(callers_on(site)) < 2, 10,
                                   "1001 takes a waiting caller after its wrap-up")
                    # and the site as it was: no caller, 1001 free on both nodes
                    for node in site.nodes:
                        await asyncio.to_thread(node.asterisk.hang_up_all)
                    await wait_for(lambda: _calls_over(config, since, 2), 10,
                                   "1001's second call over")
                    status, body = await apis[0].request("POST", "/api/v1/agents/1001/end-wrapup")
                    assert status == 200, body
                    await wait_for(lambda: member_on(site, "1001") == ["member", "member"], 5,
                                   "1001 free on both nodes")
                finally:
                    await _set_paused(apis[0], "1002", False)
        finally:
            for caller in callers:
                caller.stop()
    print(f"\n1001's call on node {there + 1}: held busy on node {other + 1} {busy_s:.2f} s"
          f" after its answer, for wrap-up {held_s:.2f} s after its end, let go"
          f" {released_s:.2f} s after its end of wrap-up; callers per node {waiting}")
    assert waiting[other] >= 1  # a caller on the node without the wrap-up, offered nobody
    assert still == (waiting, 1)


OWN_CALL_MS = 6000  # the hold comes within about 2 s of the dialing: seen while they talk


async def test_an_agent_s_own_call_on_one_node_holds_it_on_the_other_while_it_is_up(
    site: Cluster, pool: SippPool, tmp_path: Path
) -> None:
    """No queue call: only the node with the call sees the phone in use (its app_queue's
    device state), and says so in its view; the other node holds the agent busy from that
    view and lets it go once the call is over, with no wrap-up."""
    password = site.nodes[0].asterisk.secrets.agent_passwords["1001"]
    async with both_controllers(site, tmp_path) as apis:
        register_agents(pool, site)
        await wait_for(lambda: member_on(site, "1001") == ["member", "member"], 5,
                       "1001 free on both nodes")
        for node in site.nodes:  # each node's trunk has a carrier of its own
            pool.start("customer", local_ip=CARRIER_IP, port=node.asterisk.ports.trunk,
                       values={"ANSWER_UPTO": "1", "RING_MIN_S": "0", "RING_MAX_S": "0",
                               "TALK_MS": "60000"}, extra_args=["-rtp_echo"])
        dialed = time.monotonic()
        call = pool.agent_call("1001", password, OUTSIDE, HOLD_MS=str(OWN_CALL_MS))
        name = await wait_for(lambda: _node_talking(site, "1001"), 10, "1001's own call up")
        there = [node.worker_id for node in site.nodes].index(name)
        other = 1 - there
        await wait_for(lambda: held_on(site, "1001")[other] == BUSY_HOLD_REASON, 5,
                       f"1001 held on node {other + 1} while it talks on {there + 1}")
        held_s = time.monotonic() - dialed
        shown = held_on(site, "1001"), await _agent_state(apis[other], "1001", "on_call")
        await wait_for(lambda: _node_talking(site, "1001") is None, OWN_CALL_MS / 1000 + 5,
                       "1001's call hung up by its phone")
        ended = time.monotonic()
        over = await asyncio.to_thread(call.wait, 10)
        await wait_for(lambda: member_on(site, "1001") == ["member", "member"], 5,
                       f"1001 let go on node {other + 1} after its call")
        released_s = time.monotonic() - ended
    print(f"\n1001's own call on node {there + 1}: held busy on node {other + 1} {held_s:.2f} s"
          f" after it dialed, let go {released_s:.2f} s after the call's end")
    holds = ["", ""]
    holds[other] = BUSY_HOLD_REASON
    assert shown == (holds, True)  # not held where the call is: that app_queue sees it
    assert (over.successful, over.failed) == (1, 0), call.output()


async def test_a_campaign_agent_s_line_on_one_node_holds_it_in_the_queue_on_the_other(
    site: Cluster, pool: SippPool, tmp_path: Path
) -> None:
    """1001 is on campaign "blend", whose only lead is out of its calling hours: node 1's
    worker (it seats 1001 and 1002) calls the agent's phone and keeps the line up with no
    customer. Node 2's app_queue offers 1001 no queue call meanwhile (held busy), node 1's sees
    the phone in use itself; stopping the campaign through node 2's controller releases it."""
    files = [node.controller_config for node in site.nodes]
    lead = f"phone,timezone\n{phone(8100)},{zone_at_local_hour(3)}\n"
    await setup_campaign(files[0], "blend", lead, campaign_toml(agents=("1001",)), tmp_path)
    async with both_controllers(site, tmp_path) as apis:
        register_agents(pool, site)
        pool.agent_phones(RING_S="0", TALK_MS="600000")  # the nailed-up line stays up
        await wait_for(lambda: member_on(site, "1001") == ["member", "member"], 5,
                       "1001 free on both nodes")
        started = time.monotonic()
        await acli(files[0], "campaign", "start", "blend")
        await wait_for(lambda: held_on(site, "1001")[1] == BUSY_HOLD_REASON, 15,
                       "1001 held on node 2 while node 1's worker has its line up")
        held_s = time.monotonic() - started
        shown = held_on(site, "1001"), await _agent_state(apis[1], "1001", "on_call")
        stopped = time.monotonic()
        await acli(files[1], "campaign", "stop", "blend")
        await wait_for(lambda: member_on(site, "1001") == ["member", "member"], 15,
                       "1001 let go on node 2 once the campaign stopped")
        released_s = time.monotonic() - stopped
        attempts = await store_rows(load_config(files[0]),
                                    "SELECT * FROM attempts WHERE campaign = 'blend'", {})
    print(f"\n1001 on campaign blend: held busy on node 2 {held_s:.2f} s after the start,"
          f" let go {released_s:.2f} s after the stop")
    assert shown == (["", BUSY_HOLD_REASON], True)
    assert attempts == []  # out of hours: the line only ever held the agent


def _node_talking(site: Cluster, agent: str) -> str | None:
    """The node with a channel of ``agent``'s phone up, if any."""
    for node in site.nodes:
        if any(line.startswith(f"PJSIP/{agent}-") and "!Up!" in line
               for line in node.asterisk.cli("core show channels concise").splitlines()):
            return node.worker_id
    return None


async def _calls_over(config: Any, since: str, calls: int) -> bool:
    return len(await _answered_calls(config, since)) == calls


async def _set_paused(api: Api, agent: str, paused: bool) -> None:
    status, body = await api.request(
        "POST", f"/api/v1/agents/{agent}/{'pause' if paused else 'unpause'}",
        {"reason": "lunch"} if paused else {})
    assert status == 200, body


async def _answered_calls(config: Any, since: str) -> list[dict[str, Any]]:
    """The calls answered and over that arrived from ``since`` on (ISO time, as stored)."""
    return await store_rows(
        config, "SELECT agent_id, node, ended_at FROM inbound_calls WHERE outcome = 'answered'"
        " AND ended_at IS NOT NULL AND arrived_at >= :since ORDER BY arrived_at",
        {"since": since})


async def _agent_state(api: Api, agent: str, state: str) -> bool:
    """Whether the site's state of ``agent`` in QUEUE, as ``api`` shows it, is ``state``."""
    status, body = await api.request("GET", "/api/v1/agents")
    assert status == 200, body
    [shown] = [a for a in body["agents"] if a["agent_id"] == agent]
    return bool(shown["state"].get(QUEUE) == state)


async def test_a_supervisor_s_star51_reaches_the_node_that_has_the_agent_s_call(
    site: Cluster, pool: SippPool, tmp_path: Path
) -> None:
    """Asked of the other node's API as soon as the answer is stored (before the node with the
    call publishes its next view), a session is refused naming that node. Then two ``*51`` in
    a row from the supervisor's phone: the proxy sends them to alternate nodes, so one first
    reaches the node without the agent's call, which refuses it 503; the proxy tries the other
    node with it. Both sessions start, on the agent's exact channel."""
    config = load_config(site.nodes[0].controller_config)
    password = site.nodes[0].asterisk.secrets.agent_passwords[SUPERVISOR]
    caller = None
    try:
        async with both_controllers(site, tmp_path) as apis:
            register_agents(pool, site)
            pool.agent_phones(RING_S="0", TALK_MS="60000")
            caller = pool.call(NUMBER, HOLD_MS="60000")
            [call] = await wait_for(functools.partial(_talking_calls, config), 30,
                                    "the call answered")
            agent = call["agent_id"]
            there = [node.worker_id for node in site.nodes].index(call["node"])
            # the other node's API at once: the store has the answer before any view shows it
            status, body = await apis[1 - there].request("POST", "/api/v1/supervise", {
                "supervisor": SUPERVISOR, "agent": agent, "mode": "listen"})
            asked_early = status, body.get("error")
            for _ in range(2):
                spy = pool.agent_call(SUPERVISOR, password, f"*51{agent}", HOLD_MS="2000")
                spied = await asyncio.to_thread(spy.wait, 20)
                # answered, listened 2 s and hung up, all through the proxy
                assert (spied.successful, spied.failed) == (1, 0), spy.output()
            _, body = await apis[1 - there].request("GET", "/api/v1/supervision")
    finally:
        if caller is not None:
            caller.stop()
    sessions = [s for s in body["sessions"] if s["supervisor"] == SUPERVISOR]
    print(f"\n{agent}'s call on node {there + 1}; the supervisor's sessions:"
          f" {[(s['refused'] or 'started', s['spied_channel']) for s in sessions]}")
    started = [s for s in sessions if s["refused"] is None]
    passed = [s for s in sessions if s["refused"] is not None]
    assert len(started) == 2 and len({s["spied_channel"] for s in started}) == 1
    assert started[0]["spied_channel"].startswith(f"PJSIP/{agent}-")
    assert sorted(s["refused"] for s in passed) == [
        f"agent {agent}'s call is on {call['node']}: ask its controller",
        f"agent {agent}'s call is on {call['node']}: passed to the next node"]
    assert asked_early == (409, f"agent {agent}'s call is on {call['node']}: ask its controller")


async def _talking_calls(config: Any) -> list[dict[str, Any]]:
    return await store_rows(
        config, "SELECT agent_id, node, answered_at FROM inbound_calls"
        " WHERE answered_at IS NOT NULL AND ended_at IS NULL", {})
