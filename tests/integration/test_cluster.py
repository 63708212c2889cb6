"""A site of two Asterisk nodes behind Kamailio (``testbed/cluster.py``), all real.

Agents register at the proxy with their generated passwords; the carrier's calls reach a queue
on either node and are answered by a registered agent; a node killed with SIGKILL loses only
the calls it held, new calls reach the other node within seconds (measured and printed), and
the agents stay registered; nobody unauthenticated, and not the carrier either, gets a call
out of any node. The nodes' controllers share one PostgreSQL store; the last tests run a
campaign on both (one dialer worker each, two agents each) and kill one controller with
SIGKILL mid-campaign: no lead is lost or dialed twice at once, and the dead worker's agents
take the survivor's calls until it is back.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.agents.service import USER_BUSY
from controller.asterisk.events import AgentRingNoAnswer, AmiEvent, HangupRequest, parse_ami
from controller.config import Config, load_config
from controller.store.base import from_iso, to_iso
from testbed.ami_listener import ami_listener
from testbed.asterisk import AGENT_PHONE_IP, CARRIER_IP, AsteriskInstance, node_test_ports
from testbed.asterisk import test_slot as slot_of_session
from testbed.cluster import Cluster
from testbed.kamailio import test_port as proxy_test_port
from testbed.postgres import PostgresCluster
from testbed.sipp import AGENT_CALLER_IP, Sipp, SippPool

from .harness import Api, ControllerProcess, logged_events, wait_for
from .test_dialer import (
    acli,
    campaign_toml,
    carrier_calls,
    invites_by_number,
    overlapping,
    phone,
    setup_campaign,
    store_rows,
    zone_at_local_hour,
)

STRANGER_IP = "127.0.0.9"
NUMBER = "5000"  # the demo's always-open number, queue support
QUEUE = "support"
AGENTS = ("1001", "1002")
# the campaign's agents, each seated by one node's dialer worker (dialer.agents)
DIALER_AGENTS = (("1001", "1002"), ("1003", "1004"))
ALL_AGENTS = tuple(agent for share in DIALER_AGENTS for agent in share)
AGENT_FREE_LIMIT_S = 80.0
OUTSIDE = "900442079460000"  # what an agent dials to reach +44 20 7946 0000
FAILOVER_LIMIT_S = 5.0
REGISTERED = {1: [401], 2: [200]}  # challenged, then the digest answer taken
BUSY_1001 = "agent 1001 busy"  # the proxy's log line for an offer it refused
_RUNNING: list[Cluster] = []
# the sites of one session, numbered: a module that imports the ``cluster`` fixture
# (test_cluster_site) starts a site of its own, which needs a database of its own
_SITES = itertools.count(1)


@atexit.register
def _leave_nothing_running() -> None:
    for cluster in _RUNNING:
        cluster.stop()


@contextmanager
def running_cluster(
    name: str, state_dir: Path, postgres_cluster: PostgresCluster, *,
    dialer_agents: Sequence[Sequence[str]], more_agents: Sequence[str] = (),
) -> Iterator[Cluster]:
    """This slot's site named ``name`` on a database of its own, stopped on the way out."""
    slot = slot_of_session()
    site = Cluster(f"{name}{slot}", state_dir,
                   proxy_port=proxy_test_port(slot),
                   node_ports=[node_test_ports(slot, 1), node_test_ports(slot, 2)],
                   store_url=postgres_cluster.create_database(f"{name}{next(_SITES)}"),
                   dialer_agents=dialer_agents, more_agents=more_agents)
    _RUNNING.append(site)
    site.start()
    try:
        yield site
    finally:
        site.stop()
        _RUNNING.remove(site)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres_cluster: PostgresCluster
) -> Iterator[Cluster]:
    with running_cluster("cluster", tmp_path_factory.mktemp("cluster"), postgres_cluster,
                         dialer_agents=DIALER_AGENTS) as site:
        yield site


@pytest.fixture
def site(cluster: Cluster) -> Cluster:
    """The cluster with every node up and active at the proxy, agents in the queue."""
    for node in cluster.nodes:
        if not node.asterisk.is_running():
            node.asterisk.start()
    cluster.wait_nodes_active()
    for node in cluster.nodes:
        for agent in AGENTS:
            node.asterisk.cli(f"queue add member PJSIP/{agent} to {QUEUE}")
    # and no agent busy at the proxy: a call its agent answered as the node was killed gets no
    # ACK, and counts until the proxy's dialog gives up waiting for one (60 s, then 10 s)
    deadline = time.monotonic() + AGENT_FREE_LIMIT_S
    while any(cluster.kamailio.agent_calls(agent) for agent in ALL_AGENTS):
        if time.monotonic() > deadline:
            raise TimeoutError(f"agents still busy at the proxy after {AGENT_FREE_LIMIT_S} s")
        time.sleep(0.5)
    return cluster


@contextmanager
def sipp_pool(site: Cluster, work_dir: Path) -> Iterator[SippPool]:
    """sipp peers calling through the proxy; every call hung up and every one stopped after."""
    phones = site.nodes[0].asterisk.ports.agent_phone
    peers = SippPool(work_dir, site.proxy_port, phones, site.nodes[0].asterisk.ports.trunk)
    try:
        yield peers
    finally:
        for node in site.nodes:
            if node.asterisk.is_running():
                node.asterisk.hang_up_all()
        peers.close()


@pytest.fixture
def pool(site: Cluster, tmp_path: Path) -> Iterator[SippPool]:
    with sipp_pool(site, tmp_path / "sipp") as peers:
        yield peers


def register(pool: SippPool, site: Cluster, agent: str, password: str) -> Sipp:
    """Register ``agent``'s phone at the proxy, its contact the pool's answering phone."""
    phone = f"sip:{agent}@{AGENT_PHONE_IP}:{pool.agent_phone_port}"
    sipp = pool.start("register", local_ip=AGENT_CALLER_IP, uac=True, calls=1, values={
        "AUTH_USER": agent, "AUTH_PASSWORD": password, "CONTACT": phone, "EXPIRES": "300"})
    sipp.wait(timeout=10)
    return sipp


def register_agents(pool: SippPool, site: Cluster, agents: tuple[str, ...] = AGENTS) -> None:
    passwords = site.nodes[0].asterisk.secrets.agent_passwords
    for agent in agents:
        assert register(pool, site, agent, passwords[agent]).final_answers() == REGISTERED


def cdr_count(asterisk: AsteriskInstance) -> int:
    master = asterisk.host_path(asterisk.log_dir) / "cdr-csv" / "Master.csv"
    return len(master.read_text().splitlines()) if master.exists() else 0


def test_agent_registers_with_its_generated_password(site: Cluster, pool: SippPool) -> None:
    password = site.nodes[0].asterisk.secrets.agent_passwords["1001"]

    right = register(pool, site, "1001", password)
    wrong = register(pool, site, "1002", password + "x")
    unknown = register(pool, site, "1999", password)

    assert right.final_answers() == REGISTERED
    # the same answer for a wrong password and for a user that does not exist
    assert wrong.final_answers() == unknown.final_answers() == {1: [401], 2: [401]}
    assert "1001" in site.kamailio.registered()
    assert "1999" not in site.kamailio.registered()


def test_carrier_calls_reach_queues_on_both_nodes_answered_by_agents(
    site: Cluster, pool: SippPool
) -> None:
    register_agents(pool, site)
    phones = pool.agent_phones(RING_S="0", TALK_MS="1500")
    before = [cdr_count(node.asterisk) for node in site.nodes]

    # two agents for six callers: each agent takes one call at a time (site-wide), so a
    # caller may wait for a queue retry; the callers wait long enough (the agent hangs up)
    caller = pool.call(NUMBER, calls=6, rate=2, HOLD_MS="30000")
    stats = caller.wait(timeout=60)

    assert stats.successful == 6, caller.received_statuses()
    assert phones.answered_calls() == 6
    assert overlapping(invites_by_number(carrier_calls(phones))) == []
    per_node = [cdr_count(node.asterisk) - count
                for node, count in zip(site.nodes, before, strict=True)]
    print(f"\ncdr records per node for 6 calls: {per_node}")
    assert all(records > 0 for records in per_node), per_node


async def test_an_agent_of_a_queue_on_both_nodes_is_offered_one_call_at_a_time(
    site: Cluster, pool: SippPool
) -> None:
    """1001 alone in the queue on both nodes, one caller on each at nearly the same time: each
    node's app_queue sees 1001 free and rings it. The proxy lets one offer through and refuses
    the other with 486 (1001 has a call); that node's caller waits and is offered 1001 at its
    queue's next retry after the first call ended. The phone is the witness: never two
    dialogs of 1001 at once. Each node's AMI shows how app_queue took the refusal: the offer's
    channel asks to hang up busy, then app_queue reports an AgentRingNoAnswer, which the
    auto-pause must not count."""
    for node in site.nodes:
        node.asterisk.cli(f"queue remove member PJSIP/1002 from {QUEUE}")
    register_agents(pool, site, ("1001",))
    phones = pool.agent_phones(RING_S="1", TALK_MS="3000")
    before = [cdr_count(node.asterisk) for node in site.nodes]
    refused_before = site.kamailio.log_text().count(BUSY_1001)
    seen: list[list[AmiEvent]] = [[] for _ in site.nodes]

    def keep(events: list[AmiEvent]) -> Callable[[Mapping[str, str]], None]:
        def on_event(headers: Mapping[str, str]) -> None:
            if headers.get("Event") in ("HangupRequest", "AgentRingNoAnswer"):
                events.append(parse_ami(headers))
        return on_event

    async with AsyncExitStack() as listeners:
        for node, events in zip(site.nodes, seen, strict=True):
            await listeners.enter_async_context(
                ami_listener(load_config(node.controller_config).ami, keep(events)))
        # round robin at the proxy: the two callers, 0.1 s apart, go to different nodes
        caller = pool.call(NUMBER, calls=2, rate=10, HOLD_MS="30000")
        stats = await asyncio.to_thread(caller.wait, 40)

    offers = invites_by_number(carrier_calls(phones))  # any answering sipp's dialogs
    refusals = site.kamailio.log_text().count(BUSY_1001) - refused_before
    per_node = [cdr_count(node.asterisk) - count
                for node, count in zip(site.nodes, before, strict=True)]
    dialogs = offers.get("1001", [])
    gaps = [round((b.first - a.last).total_seconds(), 2) for a, b in itertools.pairwise(dialogs)]
    print(f"\n{len(dialogs)} offers to 1001, each begun this many s after the one before "
          f"ended: {gaps}; {refusals} offers refused with 486 at the proxy; "
          f"cdr records per node {per_node}")
    assert all(records > 0 for records in per_node), per_node  # a caller on each node
    assert overlapping(offers) == [], "1001 was offered two calls at once"
    assert len(dialogs) == 2 and phones.answered_calls() == 2
    assert stats.successful == 2, caller.received_statuses()
    assert refusals >= 1
    # and each of 1001's dialogs left the proxy's count when it ended
    await wait_for(lambda: site.kamailio.agent_calls("1001") == 0, 2, "1001's calls counted out")
    # each refused offer's channel asked to hang up busy (cause 17) before app_queue sent its
    # AgentRingNoAnswer: what keeps the auto-pause from counting it as a missed ring
    unanswered = 0
    for events in seen:
        busy: set[str] = set()
        for event in events:
            if isinstance(event, HangupRequest) and event.cause == USER_BUSY:
                busy.add(event.uniqueid)
            elif isinstance(event, AgentRingNoAnswer) and event.interface == "PJSIP/1001":
                unanswered += 1
                assert event.dest_uniqueid in busy, "an AgentRingNoAnswer not known busy"
    assert unanswered == refusals


@pytest.mark.timeout(180)
async def test_killed_node_loses_only_its_calls_and_new_calls_reach_the_other(
    site: Cluster, pool: SippPool, tmp_path: Path
) -> None:
    """Both controllers run; node 2's queue has no agent, so the callers it gets wait there.
    Node 2 is killed with SIGKILL while they wait and new callers arrive: those reach node 1
    within seconds and are answered by agents; node 2's controller, its AMI gone
    ``node.lost_after``, ends the waiting callers' rows ``node_lost``. Every call the carrier
    placed is in the store once, answered or node_lost, adding up to what the carrier and the
    agents' phones saw."""
    register_agents(pool, site)
    phones = pool.agent_phones(RING_S="0", TALK_MS="1500")
    doomed = site.nodes[1].asterisk
    configs = [load_config(node.controller_config) for node in site.nodes]
    async with controllers_running(site, tmp_path):
        since = datetime.now(UTC)
        waiting = waiting_callers(site, pool)
        try:
            await wait_for(lambda: _count(configs[0], ARRIVED, {"since": to_iso(since)},
                                          WAITING_CALLS), 20, "the first callers' rows")
            pid = doomed.pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            killed_at = datetime.now(UTC)
            killed_monotonic = time.monotonic()
            arriving = pool.call(NUMBER, calls=16, rate=4, HOLD_MS=PATIENCE_MS)
            marked_down_s = None
            while time.monotonic() - killed_monotonic < 10:
                if site.kamailio.dispatcher().get(site.nodes[1].sip, "").startswith("I"):
                    marked_down_s = time.monotonic() - killed_monotonic
                    break
                await asyncio.sleep(0.05)
            arriving.wait(timeout=90)
            rows = await settled_rows(configs[0], since)
            agents_answered = phones.answered_calls()
            lost_counted = await queue_calls_counted(configs[1], "node_lost")
        finally:
            waiting.stop()  # node 2's callers: their proxy gives up on them much later

    setups = [setup for caller in (waiting, arriving) for setup in caller.call_setups().values()]
    waits = sorted((answered - sent).total_seconds() for sent, answered in arriving.call_setups(
                   ).values() if answered is not None)
    lost = [row for row in rows if row["outcome"] == "node_lost"]
    answered_rows = [row for row in rows if row["outcome"] == "answered"]
    settled_s = [(from_iso(row["ended_at"]) - killed_at).total_seconds() for row in lost]
    print(f"\nnode 2 killed: marked down by the proxy after {marked_down_s} s; "
          f"{len(arriving.call_setups())} calls placed after the kill, {len(waits)} answered; "
          f"setup times {[round(wait, 2) for wait in waits]} s; {len(lost)} callers waiting "
          f"on node 2 stored node_lost {[round(s, 2) for s in sorted(settled_s)]} s after "
          f"the kill; the carrier placed {len(setups)} calls, agents answered {agents_answered}")
    assert len(waits) == len(arriving.call_setups()) >= 10, "a new call was not answered"
    assert waits[-1] < FAILOVER_LIMIT_S
    assert marked_down_s is not None and marked_down_s < FAILOVER_LIMIT_S
    # every call the carrier placed is stored once: answered, or lost with its node
    assert {row["outcome"] for row in rows} == {"answered", "node_lost"}, rows
    assert len(rows) == len(setups)
    assert len(answered_rows) == agents_answered
    assert {row["node"] for row in lost} == {site.nodes[1].worker_id}
    assert all(row["queued_at"] is not None and row["answered_at"] is None for row in lost)
    assert min(settled_s) > 0  # ended by the loss, not before
    assert lost_counted == len(lost)
    assert set(AGENTS) <= set(site.kamailio.registered())
    # and they keep answering: a new caller is put through to one of them
    assert pool.call(NUMBER, HOLD_MS="4000").wait(timeout=20).successful == 1
    assert phones.answered_calls() == agents_answered + 1


@pytest.mark.timeout(180)
async def test_a_node_lost_with_its_controller_has_its_callers_settled_by_a_survivor(
    site: Cluster, pool: SippPool, tmp_path: Path
) -> None:
    """Node 2's controller is killed with SIGKILL, then node 2: nobody follows its waiting
    callers any more. Once that controller's lease (``node.lease``) has run out, node 1's
    controller ends their rows ``node_lost`` and counts them."""
    register_agents(pool, site)
    pool.agent_phones(RING_S="0", TALK_MS="1500")
    configs = [load_config(node.controller_config) for node in site.nodes]
    async with controllers_running(site, tmp_path) as (_, doomed_controller):
        since = datetime.now(UTC)
        waiting = waiting_callers(site, pool)
        try:
            await wait_for(lambda: _count(configs[0], ARRIVED, {"since": to_iso(since)},
                                          WAITING_CALLS), 20, "the callers' rows")
            doomed_controller.kill()
            pid = site.nodes[1].asterisk.pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            killed_at = datetime.now(UTC)
            rows = await settled_rows(configs[0], since)
            lost_counted = await queue_calls_counted(configs[0], "node_lost")
        finally:
            waiting.stop()

    lost = [row for row in rows if row["outcome"] == "node_lost"]
    settled_s = [(from_iso(row["ended_at"]) - killed_at).total_seconds() for row in lost]
    print(f"\nnode 2 and its controller killed: {len(lost)} waiting callers stored node_lost "
          f"by node 1's controller {[round(s, 2) for s in sorted(settled_s)]} s later "
          f"(lease {configs[1].node.lease} s)")
    assert {row["node"] for row in lost} == {site.nodes[1].worker_id}
    assert {row["node"] for row in rows if row["outcome"] == "answered"} == {
        site.nodes[0].worker_id}
    assert all("lease" in row["reason"] for row in lost)
    assert lost_counted == len(lost)


WAITING_CALLS = 6
# a caller waits this long for an agent (the queue answers at once, with music): longer than
# the two agents of node 1 take to answer all the calls of a test (a call, then wrap-up)
PATIENCE_MS = "45000"
ARRIVED = "SELECT COUNT(*) AS n FROM inbound_calls WHERE arrived_at >= :since"
SETTLE_LIMIT_S = 30.0


@asynccontextmanager
async def controllers_running(
    site: Cluster, tmp_path: Path
) -> AsyncIterator[tuple[ControllerProcess, ...]]:
    """A controller per node, healthy; stopped (or killed) after."""
    processes = tuple(ControllerProcess(node.controller_config, tmp_path / f"controller{n}.log")
                      for n, node in enumerate(site.nodes, 1))
    try:
        for process in processes:
            process.start()
            await wait_for(Api(load_config(process.config_file)).healthy, 30,
                           f"the controller of {process.config_file}")
        yield processes
    finally:
        for process in processes:
            process.stop()


def waiting_callers(site: Cluster, pool: SippPool) -> Sipp:
    """Node 2's queue loses its agents, then six callers: those that reach node 2 wait
    there (the proxy alternates between the nodes); node 1's are answered."""
    for agent in AGENTS:
        site.nodes[1].asterisk.cli(f"queue remove member PJSIP/{agent} from {QUEUE}")
    return pool.call(NUMBER, calls=WAITING_CALLS, rate=2, HOLD_MS=PATIENCE_MS)


async def settled_rows(config: Config, since: datetime) -> list[dict[str, Any]]:
    """The rows of the calls arrived since ``since``, once none is open."""
    params = {"since": to_iso(since)}
    await wait_for(lambda: _count(config, ARRIVED + " AND ended_at IS NULL", params, 0,
                                  exactly=True), SETTLE_LIMIT_S, "every call's row to end")
    return await store_rows(
        config, "SELECT * FROM inbound_calls WHERE arrived_at >= :since ORDER BY arrived_at",
        params)


async def queue_calls_counted(config: Config, outcome: str) -> float:
    """``callctl_queue_calls_total{queue=support, outcome}`` at the controller of ``config``."""
    status, body = await Api(config).request("GET", "/metrics", token=None)
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "callctl_queue_calls_total" and sample.labels == {
                    "queue": QUEUE, "outcome": outcome}:
                return float(sample.value)
    return 0.0


def test_a_node_refusing_with_a_5xx_passes_the_call_to_the_other(
    site: Cluster, pool: SippPool
) -> None:
    refusing = site.nodes[0].asterisk
    before = cdr_count(refusing)
    refusing.cli(f"dialplan add extension {NUMBER},1,Congestion() into callctl-inbound replace")
    try:
        caller = pool.call(NUMBER, calls=4, rate=2, HOLD_MS="1000")
        stats = caller.wait(timeout=30)
    finally:
        refusing.cli("dialplan reload")

    assert stats.successful == 4, caller.received_statuses()
    assert cdr_count(refusing) > before  # calls did reach it, and were refused there
    assert 503 not in caller.received_statuses()  # the proxy kept the refusal to itself
    # a node that answers is up: a refusal does not take it out of the set
    assert site.kamailio.dispatcher()[site.nodes[0].sip].startswith("A")


@pytest.mark.parametrize("source", [STRANGER_IP, CARRIER_IP])
def test_no_call_out_without_an_agent(site: Cluster, pool: SippPool, source: str) -> None:
    carriers = [pool.start("customer", local_ip=CARRIER_IP, port=node.asterisk.ports.trunk,
                           extra_args=["-rtp_echo"]) for node in site.nodes]
    before = [cdr_count(node.asterisk) for node in site.nodes]

    caller = pool.call(OUTSIDE, local_ip=source)
    stats = caller.wait(timeout=20)
    direct = pool.start("caller", local_ip=source, uac=False, service=OUTSIDE, calls=1,
                        extra_args=[site.nodes[0].sip])
    direct.wait(timeout=20)

    # at the proxy: a stranger is challenged, the carrier may call the site's numbers only
    assert stats.successful == 0
    assert caller.received_statuses()[-1] == (401 if source == STRANGER_IP else 403)
    # straight to a node: its ACL admits the proxy alone
    assert direct.received_statuses()[-1] == 403
    for carrier in carriers:
        assert "INVITE" not in carrier.received_requests()
    assert [cdr_count(node.asterisk) for node in site.nodes] == before
    for node in site.nodes:
        assert node.asterisk.cli("core show channels count").startswith("0 active channels")


def test_agent_calls_out_through_the_proxy(site: Cluster, pool: SippPool) -> None:
    """The path the test above refuses works for an authenticated agent: the negative test
    would pass on a site that cannot call out at all otherwise."""
    carriers = [pool.start("customer", local_ip=CARRIER_IP, port=node.asterisk.ports.trunk,
                           values={"ANSWER_UPTO": "1.0", "RING_MIN_S": "0", "RING_MAX_S": "1",
                                   "TALK_MS": "1000"},
                           extra_args=["-rtp_echo"]) for node in site.nodes]
    password = site.nodes[0].asterisk.secrets.agent_passwords["1001"]

    call = pool.agent_call("1001", password, OUTSIDE, HOLD_MS="1000")
    call.wait(timeout=20)

    assert 200 in call.received_statuses(), call.received_statuses()
    assert sum("INVITE" in carrier.received_requests() for carrier in carriers) == 1


LEADS = 12
# every customer answers (talks 1.5 s) or is busy: no call rings out its 15 s
CUSTOMERS = {"ANSWER_UPTO": "0.7", "BUSY_UPTO": "1", "RING_MIN_S": "1", "RING_MAX_S": "1",
             "TALK_MS": "1500"}
CARRY_ON_LIMIT_S = 10.0


@pytest.mark.timeout(240)
async def test_a_controller_killed_mid_campaign_loses_no_lead_and_dials_none_twice(
    site: Cluster, pool: SippPool, tmp_path: Path
) -> None:
    """Two controllers on one store run one campaign, each seating its own two agents. The
    first is killed with SIGKILL: the second goes on dialing at once; 30 s later its lease
    check settles the dead one's open attempts as ``lost``, and their leads are dialed again
    once the dead worker's calls have surely ended. The carriers are the witness."""
    register_agents(pool, site, ALL_AGENTS)
    pool.agent_phones(RING_S="0", TALK_MS="600000")  # nailed-up agent legs stay up
    carriers = [pool.start("customer", local_ip=CARRIER_IP, port=node.asterisk.ports.trunk,
                           values=CUSTOMERS, extra_args=["-rtp_echo"]) for node in site.nodes]
    files = [node.controller_config for node in site.nodes]
    config = load_config(files[0])
    doomed, survivor = (ControllerProcess(file, tmp_path / f"controller{n}.log")
                        for n, file in enumerate(files, 1))
    workers = [node.worker_id for node in site.nodes]
    name = "scaleout"
    numbers = [phone(7000 + i) for i in range(LEADS)]
    zone = zone_at_local_hour(12)
    campaign = {"c": name}
    await setup_campaign(
        files[0], name, "phone,timezone\n" + "".join(f"{n},{zone}\n" for n in numbers),
        campaign_toml(agents=ALL_AGENTS, line_cap=4),
        tmp_path,
    )
    try:
        for process, file in ((doomed, files[0]), (survivor, files[1])):
            process.start()
            await wait_for(Api(load_config(file)).healthy, 30, f"the controller of {file}")
        await acli(files[0], "campaign", "start", name)
        # both workers are dialing, and the first has a call up: it dies with calls to settle
        await wait_for(lambda: _workers_dialed(config, name, workers), 60,
                       "both workers to dial", every=0.5)
        await wait_for(lambda: _count(config, "SELECT COUNT(*) AS n FROM attempts WHERE"
                                      " campaign = :c AND state = 'dialing' AND worker = :w",
                                      {**campaign, "w": workers[0]}, 1),
                       60, "the first worker to have a call up", every=0.1)
        doomed.kill()
        killed_at = datetime.now(UTC)
        killed = time.monotonic()
        open_at_kill = {row["attempt_id"] for row in await store_rows(
            config, "SELECT attempt_id FROM attempts WHERE campaign = :c AND state = 'dialing'"
            " AND worker = :w", {**campaign, "w": workers[0]})}
        await wait_for(lambda: _dialed_since(config, name, workers[1], killed_at),
                       CARRY_ON_LIMIT_S + 5, "the survivor to dial again", every=0.2)
        carried_on_s = time.monotonic() - killed
        await wait_for(
            lambda: _count(config, "SELECT COUNT(*) AS n FROM leads WHERE campaign = :c"
                           " AND state = 'done'", campaign, LEADS),
            150, "every lead to be done", every=1.0,
        )
        await wait_for(
            lambda: _count(config, "SELECT COUNT(*) AS n FROM attempts WHERE campaign = :c"
                           " AND state = 'dialing'", campaign, 0, exactly=True),
            30, "no attempt left open",
        )
        await acli(files[1], "campaign", "stop", name)
    finally:
        doomed.kill()
        survivor.stop()

    attempts = await store_rows(
        config, "SELECT * FROM attempts WHERE campaign = :c ORDER BY phone, started_at", campaign)
    leads = {row["phone"]: row for row in await store_rows(
        config, "SELECT * FROM leads WHERE campaign = :c", campaign)}
    seen = invites_by_number([call for carrier in carriers for call in carrier_calls(carrier)])
    result_of = {a["attempt_id"]: a["result"] for a in attempts}
    lost = [a for a in attempts if a["result"] == "lost"]
    dialed = [a for a in attempts if a["result"] not in ("not_dialed", "lost")]
    print(f"\nkilled {workers[0]}: the survivor dialed again {carried_on_s:.2f} s later; "
          f"{len(attempts)} attempts ({len(lost)} lost: {len(open_at_kill)} open at the kill), "
          f"{sum(len(d) for d in seen.values())} dialogs at the carriers, "
          f"by worker {_by_worker(attempts)}")

    assert carried_on_s < CARRY_ON_LIMIT_S
    # no lead lost, none dialed twice at once
    assert sorted(leads) == sorted(numbers)
    assert all(lead["state"] == "done" for lead in leads.values())
    assert overlapping(seen) == [], "two calls to one number at the same time"
    # the dead worker's open attempts, and only they, are settled as lost
    assert {a["attempt_id"] for a in lost} == open_at_kill
    assert all(result_of[attempt] == "lost" for attempt in open_at_kill)
    # the store adds up to what the carriers saw: a lost attempt is one the carrier may or
    # may not have seen (the kill may have come between its claim and its originate)
    for number in numbers:
        known = [a for a in dialed if a["phone"] == number]
        maybe = [a for a in lost if a["phone"] == number]
        calls = len(seen.get(number, []))
        assert len(known) <= calls <= len(known) + len(maybe), (number, known, maybe, calls)
        assert leads[number]["attempts"] == len(known) + len(maybe)


COVER_LEADS = 400  # more than the test's minutes can dial: the campaign runs throughout
# the survivor covers once the dead worker's lease (30 s) has run out; its last renewal came
# at most one renewal period (5 s) and a tick before the kill
COVER_EARLIEST_S = 24.0
COVER_LIMIT_S = 60.0


@pytest.mark.timeout(300)
async def test_a_dead_worker_s_agents_take_the_survivor_s_calls_until_it_is_back(
    site: Cluster, pool: SippPool, tmp_path: Path
) -> None:
    """Two controllers on one store run one campaign, each seating its own two agents. The
    first is killed with SIGKILL and its agents hang up their lines gone silent: once its lease
    has run out the survivor seats them, and they take its calls. When the first controller
    is back the survivor lets them go and their own worker seats them again. The agents'
    phones are the witness that no agent had two calls at once through it all."""
    register_agents(pool, site, ALL_AGENTS)
    phones = pool.agent_phones(RING_S="0", TALK_MS="600000")  # nailed-up agent legs stay up
    for node in site.nodes:
        pool.start("customer", local_ip=CARRIER_IP, port=node.asterisk.ports.trunk,
                   values=CUSTOMERS, extra_args=["-rtp_echo"])
    files = [node.controller_config for node in site.nodes]
    config = load_config(files[0])
    doomed, survivor, back = (ControllerProcess(file, tmp_path / f"controller-{n}.log")
                              for n, file in (("1", files[0]), ("2", files[1]),
                                              ("1-back", files[0])))
    workers = [node.worker_id for node in site.nodes]
    gone_agents = DIALER_AGENTS[0]
    name = "cover"
    zone = zone_at_local_hour(12)
    await setup_campaign(
        files[0], name,
        "phone,timezone\n" + "".join(f"{phone(7100 + i)},{zone}\n" for i in range(COVER_LEADS)),
        campaign_toml(agents=ALL_AGENTS, line_cap=4),
        tmp_path,
    )
    started_at = datetime.now(UTC)
    try:
        for process, file in ((doomed, files[0]), (survivor, files[1])):
            process.start()
            await wait_for(Api(load_config(file)).healthy, 30, f"the controller of {file}")
        await acli(files[0], "campaign", "start", name)
        for worker, agents in zip(workers, DIALER_AGENTS, strict=True):
            await wait_for(partial(_connected, config, name, worker, agents, started_at),
                           60, f"{worker} to connect its agents", every=0.5)
        doomed.kill()
        killed_at = datetime.now(UTC)
        killed = time.monotonic()
        # its agents' legs still sit in node 1's bridges, nobody on the line: they hang up
        _hang_up_agent_legs(site.nodes[0].asterisk, gone_agents)
        await wait_for(lambda: _connected(config, name, workers[1], gone_agents, killed_at),
                       COVER_LIMIT_S, "the survivor to connect the dead worker's agents",
                       every=0.5)
        covered_s = time.monotonic() - killed
        nodes_seen = {row["name"]: row for row in json.loads(
            await acli(files[1], "node", "list", "--json"))}
        back.start()
        await wait_for(Api(config).healthy, 30, "the first controller back")
        back_at = datetime.now(UTC)
        returned = time.monotonic()
        await wait_for(lambda: _connected(config, name, workers[0], gone_agents, back_at),
                       COVER_LIMIT_S, "the first worker to connect its agents again", every=0.5)
        returned_s = time.monotonic() - returned
        await acli(files[1], "campaign", "stop", name)
    finally:
        doomed.kill()
        back.stop()
        survivor.stop()

    covers = [(at, e["agents"], e["workers_gone"])
              for e in logged_events(survivor.log_file, "dialer.agents_covered")
              if (at := from_iso(e["timestamp"])) > killed_at]
    attempts = await store_rows(
        config, "SELECT worker, agent_id, connected_at FROM attempts WHERE campaign = :c"
        " AND connected_at IS NOT NULL", {"c": name})
    by_survivor = sorted(from_iso(str(a["connected_at"])) for a in attempts
                         if a["worker"] == workers[1] and a["agent_id"] in gone_agents)
    offers = invites_by_number(carrier_calls(phones))
    print(f"\nkilled {workers[0]}: the survivor's covers (s after the kill, agents) "
          f"{[(round((at - killed_at).total_seconds(), 1), agents) for at, agents, _ in covers]}, "
          f"it connected them {covered_s:.1f} s after the kill, {len(by_survivor)} calls; "
          f"back, {workers[0]} "
          f"connected them again {returned_s:.1f} s after its start; "
          f"{sum(len(d) for d in offers.values())} agent dialogs")

    # what an operator sees meanwhile: the dead worker gone, its agents covered by the survivor
    assert not nodes_seen[workers[0]]["dialer_lease"]["alive"]
    assert nodes_seen[workers[1]]["dialer_lease"]["alive"]
    assert nodes_seen[workers[1]]["covers"] == sorted(gone_agents)
    assert [(agents, gone) for _, agents, gone in covers] == [
        (list(gone_agents), [workers[0]]), ([], [])]
    (covered_at, _, _), (handed_back_at, _, _) = covers
    assert (covered_at - killed_at).total_seconds() >= COVER_EARLIEST_S  # not before the lease
    assert by_survivor and killed_at < by_survivor[0]
    assert by_survivor[-1] < handed_back_at  # let go: no call of the survivor's after that
    assert overlapping(offers) == [], "an agent had two calls at once"
    # a line from its worker, one from the survivor, one from its worker back; the seats
    # refused meanwhile (486: the agent had a line) never reached a phone
    assert {agent: len(offers.get(agent, [])) for agent in ALL_AGENTS} == {
        agent: 3 if agent in gone_agents else 1 for agent in ALL_AGENTS}


def _hang_up_agent_legs(asterisk: AsteriskInstance, agents: Sequence[str]) -> None:
    for line in asterisk.cli("core show channels concise").splitlines():
        channel = line.split("!", 1)[0]
        if any(channel.startswith(f"PJSIP/{agent}-") for agent in agents):
            asterisk.cli(f"channel request hangup {channel}")


async def _connected(
    config: Config, campaign: str, worker: str, agents: Sequence[str], since: datetime
) -> bool:
    """Whether ``worker`` connected a call of ``campaign`` to one of ``agents`` after ``since``."""
    rows = await store_rows(
        config, "SELECT agent_id FROM attempts WHERE campaign = :c AND worker = :w"
        " AND connected_at > :since", {"c": campaign, "w": worker, "since": to_iso(since)})
    return any(row["agent_id"] in agents for row in rows)


async def _workers_dialed(config: Config, campaign: str, workers: list[str]) -> bool:
    rows = await store_rows(
        config,
        "SELECT DISTINCT worker FROM attempts WHERE campaign = :c", {"c": campaign})
    return {row["worker"] for row in rows} >= set(workers)


async def _dialed_since(config: Config, campaign: str, worker: str, since: datetime) -> bool:
    rows = await store_rows(
        config,
        "SELECT COUNT(*) AS n FROM attempts WHERE campaign = :c AND worker = :w"
        " AND started_at > :since", {"c": campaign, "w": worker, "since": to_iso(since)})
    return int(rows[0]["n"]) > 0


async def _count(
    config: Config, sql: str, params: dict[str, str], wanted: int, exactly: bool = False
) -> bool:
    rows = await store_rows(config, sql, params)
    count = int(rows[0]["n"])
    return count == wanted if exactly else count >= wanted


def _by_worker(attempts: list[dict[str, object]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for attempt in attempts:
        counts[str(attempt["worker"])] = counts.get(str(attempt["worker"]), 0) + 1
    return counts
