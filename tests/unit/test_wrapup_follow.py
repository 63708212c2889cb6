"""An end of wrap-up stored through one controller ends the agent's wrap-up on every node whose
app_queue holds it in one (``AgentService.follow_wrapup_ends``), and a call answered on one
node holds its agent on the others while it is up and for its wrap-up, and any other call a
node's view shows on the agent's phone while it is up (``hold_for_calls_elsewhere``), on a real
store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from controller.agents.repository import StatusLogRepository
from controller.asterisk.ami import AmiClient
from controller.asterisk.events import parse_ami
from controller.inbound.agents import AgentService
from controller.inbound.repository import AgentRepository, QueueMembership
from controller.inbound.site_queues import NodeQueueView
from controller.nodes.queue_views import FRESH_S, NodeQueueViewRepository
from controller.nodes.repository import NodeLeaseRepository
from controller.state.model import (
    BUSY_HOLD_REASON,
    WRAPUP_HOLD_REASON,
    AgentState,
    LiveModel,
)
from controller.store.base import Database

from .test_node_service import T0, Clock

MEMBER = {"Queue": "support", "Interface": "PJSIP/1001", "MemberName": "1001"}


class FakeAmi:
    def __init__(self) -> None:
        self.actions: list[tuple[str, dict[str, Any]]] = []

    async def action(self, name: str, **params: Any) -> dict[str, str]:
        self.actions.append((name, params))
        return {}


def node(store: Database, clock: Clock, name: str) -> tuple[AgentService, LiveModel, FakeAmi]:
    """A node whose app_queue has 1001 in ``support`` (60 s of wrap-up), and its controller."""
    model = LiveModel(clock, queue_wrapup={"support": 60.0})
    model.apply(parse_ami({"Event": "QueueMemberAdded", **MEMBER, "Status": "1",
                           "Paused": "0"}))
    ami = FakeAmi()
    return AgentService(cast(AmiClient, ami), store, model, lambda _: [], name), model, ami


@pytest.fixture(autouse=True)
async def logged_in(store: Database) -> None:
    """1001 logged in to ``support`` at T0."""
    await AgentRepository(store).log_in(
        "1001", [QueueMembership("support")], datetime.fromtimestamp(T0, UTC))


def call_ends(model: LiveModel) -> None:
    model.apply(parse_ami({"Event": "AgentComplete", **MEMBER, "Uniqueid": "u1",
                           "TalkTime": "30"}))


async def test_an_end_stored_elsewhere_rejoins_the_agent_where_it_is_in_wrap_up(
    store: Database,
) -> None:
    clock = Clock()
    here, model, ami = node(store, clock, "n1")
    elsewhere, _, other_ami = node(store, clock, "n2")
    call_ends(model)  # the call was on n1; its *47 reaches n2, which stores the end
    assert model.queues["support"].members["PJSIP/1001"].state(clock.now) is AgentState.WRAPUP
    clock.now += 5
    await StatusLogRepository(store).record_wrapup_end(
        "1001", datetime.fromtimestamp(clock.now, UTC))
    clock.now += 1

    await here.follow_wrapup_ends()
    await elsewhere.follow_wrapup_ends()  # 1001 is available there: nothing to end

    assert [name for name, _ in ami.actions] == ["QueueRemove", "QueueAdd"]
    assert ami.actions[1][1]["Queue"] == "support"
    assert other_ami.actions == []
    await here.follow_wrapup_ends()  # followed once
    assert len(ami.actions) == 2


async def test_ends_from_before_the_start_or_of_agents_not_in_wrap_up_change_nothing(
    store: Database,
) -> None:
    clock = Clock()
    history = StatusLogRepository(store)
    await history.record_wrapup_end("1001", datetime.fromtimestamp(T0 - 1, UTC))
    here, model, ami = node(store, clock, "n1")
    call_ends(model)
    clock.now += 1
    await here.follow_wrapup_ends()  # the end was before this controller started
    assert ami.actions == []
    await history.record_wrapup_end("1002", datetime.fromtimestamp(clock.now, UTC))
    clock.now += 61  # 1001's wrap-up ran out
    await history.record_wrapup_end("1001", datetime.fromtimestamp(clock.now, UTC))
    await here.follow_wrapup_ends()
    assert ami.actions == []


async def test_an_end_committed_late_is_still_followed(store: Database) -> None:
    clock = Clock()
    here, model, ami = node(store, clock, "n1")
    call_ends(model)
    clock.now += 10
    await here.follow_wrapup_ends()
    # written now by a controller whose store write waited: its moment is 8 s back
    await StatusLogRepository(store).record_wrapup_end(
        "1001", datetime.fromtimestamp(clock.now, UTC) - timedelta(seconds=8))
    clock.now += 1
    await here.follow_wrapup_ends()
    assert [name for name, _ in ami.actions] == ["QueueRemove", "QueueAdd"]


async def answered_call_ended(
    store: Database, node: str, ended: float, outcome: str = "answered"
) -> None:
    """1001 took a call on ``node`` that ended at ``ended``, as its controller stores it."""
    at = datetime.fromtimestamp(ended, UTC)
    await store.execute(
        "INSERT INTO inbound_calls (call_id, channel, did, queue, arrived_at, answered_at,"
        " ended_at, outcome, agent_id, node) VALUES (:id, 'PJSIP/trunk-1', '5000', 'support',"
        " :arrived, :answered, :ended, :outcome, '1001', :node)",
        {"id": f"c{ended}", "arrived": (at - timedelta(seconds=40)).isoformat(),
         "answered": (at - timedelta(seconds=30)).isoformat(), "ended": at.isoformat(),
         "outcome": outcome, "node": node})


def paused_as(model: LiveModel, paused: bool, reason: str) -> None:
    model.apply(parse_ami({"Event": "QueueMemberPause", **MEMBER, "Paused": "1" if paused
                           else "0", "PausedReason": reason}))


async def test_a_call_s_end_holds_its_agent_on_the_other_node_until_its_wrap_up_ends(
    store: Database,
) -> None:
    clock = Clock()
    here, _, ami = node(store, clock, "n1")
    elsewhere, model, other_ami = node(store, clock, "n2")
    clock.now += 1
    await answered_call_ended(store, "n1", clock.now)  # n1's app_queue starts the wrap-up
    clock.now += 1

    await here.hold_for_calls_elsewhere()
    await elsewhere.hold_for_calls_elsewhere()

    assert ami.actions == []
    assert other_ami.actions == [("QueuePause", {
        "Interface": "PJSIP/1001", "Queue": "support", "Paused": "true",
        "Reason": WRAPUP_HOLD_REASON})]
    paused_as(model, True, WRAPUP_HOLD_REASON)
    assert model.queues["support"].members["PJSIP/1001"].state(clock.now) is AgentState.WRAPUP
    await elsewhere.follow_store()  # the agent's position (available) keeps the hold
    assert len(other_ami.actions) == 1
    clock.now += 59  # the wrap-up's 60 s are over
    await elsewhere.hold_for_calls_elsewhere()
    assert other_ami.actions[1] == ("QueuePause", {
        "Interface": "PJSIP/1001", "Queue": "support", "Paused": "false", "Reason": None})


async def test_an_early_end_lets_the_held_agent_go_and_its_own_pause_is_kept(
    store: Database,
) -> None:
    clock = Clock()
    elsewhere, model, ami = node(store, clock, "n2")
    await answered_call_ended(store, "n1", clock.now)
    clock.now += 1
    await elsewhere.hold_for_calls_elsewhere()
    paused_as(model, True, WRAPUP_HOLD_REASON)
    clock.now += 5
    await StatusLogRepository(store).record_wrapup_end(
        "1001", datetime.fromtimestamp(clock.now, UTC))
    await elsewhere.follow_wrapup_ends()  # a hold is no wrap-up of app_queue's: no rejoin
    await elsewhere.hold_for_calls_elsewhere()
    assert [(name, params["Paused"]) for name, params in ami.actions] == [
        ("QueuePause", "true"), ("QueuePause", "false")]
    paused_as(model, False, "")
    # the next call: the agent pauses for lunch before this node holds it; lunch stays
    clock.now += 1
    await answered_call_ended(store, "n1", clock.now)
    paused_as(model, True, "lunch")
    clock.now += 1
    await elsewhere.hold_for_calls_elsewhere()
    assert len(ami.actions) == 2


async def test_a_call_its_node_s_loss_ended_holds_nobody(store: Database) -> None:
    clock = Clock()
    survivor, _, ami = node(store, clock, "n2")
    # n1 died mid-call; a survivor settled its open call well after the real end
    await answered_call_ended(store, "n1", clock.now, outcome="node_lost")
    clock.now += 1
    await survivor.hold_for_calls_elsewhere()
    assert ami.actions == []


async def test_a_call_up_on_a_live_node_holds_its_agent_busy_on_the_others(
    store: Database,
) -> None:
    clock = Clock()
    survivor, model, ami = node(store, clock, "n2")
    at = datetime.fromtimestamp(clock.now, UTC)
    await store.execute(
        "INSERT INTO inbound_calls (call_id, channel, did, queue, arrived_at, answered_at,"
        " agent_id, node) VALUES ('up', 'PJSIP/trunk-2', '5000', 'support', :at, :at,"
        " '1001', 'n1')", {"at": at.isoformat()})
    await NodeLeaseRepository(store).renew("n1", at + timedelta(seconds=30))
    clock.now += 1
    await survivor.hold_for_calls_elsewhere()
    assert ami.actions == [("QueuePause", {
        "Interface": "PJSIP/1001", "Queue": "support", "Paused": "true",
        "Reason": BUSY_HOLD_REASON})]
    paused_as(model, True, BUSY_HOLD_REASON)
    assert model.queues["support"].members["PJSIP/1001"].state(clock.now) is AgentState.ON_CALL
    clock.now += 40  # n1's controller stopped renewing: its open call holds nobody
    await survivor.hold_for_calls_elsewhere()
    assert [params["Paused"] for _, params in ami.actions] == ["true", "false"]


async def test_a_call_of_the_agent_s_phone_a_node_s_view_shows_holds_it_while_it_is_up(
    store: Database,
) -> None:
    """A campaign's nailed-up line, or a call the agent placed: no queue call is stored, but
    n1's app_queue sees the phone in use and its view says so."""
    clock = Clock()
    survivor, model, ami = node(store, clock, "n2")
    views = NodeQueueViewRepository(store)

    async def n1_shows(state: AgentState) -> None:
        await views.publish("n1", {"support": NodeQueueView(agents={"PJSIP/1001": state})},
                            datetime.fromtimestamp(clock.now, UTC))

    await n1_shows(AgentState.ON_CALL)
    clock.now += 1
    await survivor.hold_for_calls_elsewhere()
    assert await survivor.calls_elsewhere() == {"1001": ["n1"]}
    assert ami.actions == [("QueuePause", {
        "Interface": "PJSIP/1001", "Queue": "support", "Paused": "true",
        "Reason": BUSY_HOLD_REASON})]
    paused_as(model, True, BUSY_HOLD_REASON)
    await n1_shows(AgentState.AVAILABLE)  # hung up: no wrap-up follows a call of no queue
    clock.now += 1
    await survivor.hold_for_calls_elsewhere()
    assert [params["Paused"] for _, params in ami.actions] == ["true", "false"]
    paused_as(model, False, "")
    await n1_shows(AgentState.ON_CALL)  # then n1's controller stops: its view goes stale
    clock.now += FRESH_S + 1
    await survivor.hold_for_calls_elsewhere()
    assert len(ami.actions) == 2
