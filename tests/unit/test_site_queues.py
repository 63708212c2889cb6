"""The site's view of a queue: nodes' views merged (callers summed, each agent's busiest state),
stored by each node and read back fresh only, on both stores, and the queue status and the
agents list built on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from controller.asterisk.ami import AmiClient
from controller.asterisk.events import QueueCallerJoin, QueueMemberAdded
from controller.inbound.agents import AgentService
from controller.inbound.repository import AgentRepository, QueueMembership
from controller.inbound.site_queues import NodeQueueView, merge_views, view_of
from controller.inbound.status import queue_status
from controller.nodes.queue_views import FRESH_S, NodeQueueViewRepository
from controller.state.model import AgentState, LiveModel
from controller.store.base import Database

from .test_inbound_config import config_with

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ON_CALL, AVAILABLE = AgentState.ON_CALL, AgentState.AVAILABLE


def test_callers_add_up_the_oldest_waits_longest_and_an_agent_is_its_busiest_state() -> None:
    node1 = NodeQueueView(1, 100.0, {"PJSIP/1001": AVAILABLE, "PJSIP/1002": AVAILABLE})
    node2 = NodeQueueView(2, 90.0, {"PJSIP/1001": ON_CALL, "PJSIP/1002": AgentState.UNAVAILABLE})
    site = merge_views([node1, node2, NodeQueueView()])
    assert (site.callers, site.oldest_joined_at) == (3, 90.0)
    assert site.agents == {"PJSIP/1001": ON_CALL, "PJSIP/1002": AVAILABLE}
    assert site.longest_wait(100.0) == 10.0
    counts = site.agents_by_state()
    assert (counts[ON_CALL], counts[AVAILABLE], counts[AgentState.WRAPUP]) == (1, 1, 0)
    assert merge_views([]) == NodeQueueView()


def test_a_paused_agent_ringing_elsewhere_is_ringing_and_wrapup_beats_paused() -> None:
    def merged(*states: AgentState) -> AgentState:
        return merge_views([NodeQueueView(agents={"a": s}) for s in states]).agents["a"]

    assert merged(AgentState.PAUSED, AgentState.RINGING) is AgentState.RINGING
    assert merged(AgentState.PAUSED, AgentState.WRAPUP) is AgentState.WRAPUP
    assert merged(AgentState.UNAVAILABLE, AgentState.PAUSED) is AgentState.PAUSED


def _model(now: float) -> LiveModel:
    model = LiveModel(clock=lambda: now)
    model.apply(QueueMemberAdded(queue="support", interface="PJSIP/1001", status=1))
    model.apply(QueueCallerJoin(uniqueid="c1", linkedid="c1", channel="PJSIP/carrier-00000001",
                                queue="support", position=1))
    return model


def test_a_nodes_view_comes_from_its_live_model() -> None:
    now = T0.timestamp()
    view = view_of(_model(now).queues["support"], now + 4)
    assert view == NodeQueueView(1, now, {"PJSIP/1001": AVAILABLE})


async def test_views_are_stored_per_node_and_only_fresh_ones_of_other_nodes_read(
    store: Database
) -> None:
    repo = NodeQueueViewRepository(store)
    view = NodeQueueView(2, 1000.5, {"PJSIP/1001": ON_CALL})
    await repo.publish("node1", {"support": NodeQueueView()}, T0)
    await repo.publish("node2", {"support": view, "sales": NodeQueueView()}, T0)
    await repo.publish("node2", {"support": view}, T0 + timedelta(seconds=3))  # an update
    stale = T0 + timedelta(seconds=FRESH_S + 1)
    assert await repo.fresh("node1", T0 + timedelta(seconds=4)) == {
        "support": [view], "sales": [NodeQueueView()]}
    assert await repo.fresh("node2", T0 + timedelta(seconds=4)) == {"support": [NodeQueueView()]}
    # node2's support row was written at +3 s, its sales row at 0: only the first is fresh
    assert await repo.fresh("node1", stale) == {"support": [view]}
    # where agents' calls are (supervision goes there, holds come from there): other nodes,
    # fresh views only
    await repo.publish("node3", {"support": view, "sales": NodeQueueView(
        agents={"PJSIP/1001": ON_CALL, "PJSIP/1002": AVAILABLE})}, T0 + timedelta(seconds=3))
    assert await repo.on_call_elsewhere("node1", T0 + timedelta(seconds=4)) == {
        "PJSIP/1001": ["node2", "node3"]}
    assert await repo.on_call_elsewhere("node2", T0 + timedelta(seconds=4)) == {
        "PJSIP/1001": ["node3"]}
    assert await repo.on_call_elsewhere(
        "node1", T0 + timedelta(seconds=3 + FRESH_S + 1)) == {}


async def test_queue_status_counts_the_callers_and_agents_of_every_node(store: Database) -> None:
    now = T0.timestamp()
    model = _model(now)
    await NodeQueueViewRepository(store).publish(
        "node2", {"support": NodeQueueView(1, now - 30, {"PJSIP/1001": ON_CALL})}, T0)
    config = config_with({"queues": {"support": {}}})
    [support] = await queue_status(model, store, config.inbound, "node1")
    assert (support["callers"], support["longest_wait_s"], support["nodes"]) == (2, 30.0, 2)
    assert (support["agents"]["on_call"], support["agents"]["available"]) == (1, 0)
    [alone] = await queue_status(model, store, config.inbound, "node2")  # its own row skipped
    assert (alone["callers"], alone["nodes"], alone["agents"]["available"]) == (1, 1, 1)


async def test_the_agents_list_shows_each_agents_state_in_each_queue_site_wide(
    store: Database
) -> None:
    now = T0.timestamp()
    model = _model(now)  # 1001 available here
    await AgentRepository(store).log_in("1001", [QueueMembership("support")], T0)
    await NodeQueueViewRepository(store).publish(
        "node2", {"support": NodeQueueView(0, None, {"PJSIP/1001": ON_CALL}),
                  "sales": NodeQueueView(0, None, {"PJSIP/1001": AgentState.RINGING})}, T0)
    agents = AgentService(cast(AmiClient, None), store, model, lambda _: [], "node1")
    [agent] = await agents.list_agents()
    assert agent["state"] == {"support": "on_call", "sales": "ringing"}
    [alone] = await AgentService(cast(AmiClient, None), store, model, lambda _: [],
                                 "node2").list_agents()
    assert alone["state"] == {"support": "available"}  # node2's own rows are not read
