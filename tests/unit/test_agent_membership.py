"""Each node's members follow the agents' stored positions: what to change, and the versions
each node followed, stored per node on both stores."""

from __future__ import annotations

from controller.agents.membership import (
    AddMember,
    NodeMember,
    RemoveMember,
    SetPause,
    holds_for_calls_elsewhere,
    member_changes,
)
from controller.inbound.repository import AgentRepository, QueueMembership
from controller.state.model import BUSY_HOLD_REASON, WRAPUP_HOLD_REASON
from controller.store.base import Database

QUEUES = ("sales", "support")
FREE = NodeMember(paused=False, reason="")


def test_a_login_elsewhere_adds_the_members_this_node_holds_paused_as_stored() -> None:
    wanted = [QueueMembership("support", 2), QueueMembership("billing")]  # not on this node
    assert member_changes(wanted, False, "", {}, QUEUES) == [AddMember("support", 2)]
    assert member_changes(wanted, True, "lunch", {}, QUEUES) == [
        AddMember("support", 2), SetPause("support", True, "lunch")]


def test_a_logout_elsewhere_removes_every_member_and_a_matching_node_needs_nothing() -> None:
    on_node = {"sales": FREE, "support": NodeMember(True, "lunch")}
    assert member_changes([], False, "", on_node, QUEUES) == [
        RemoveMember("sales"), RemoveMember("support")]
    wanted = [QueueMembership("sales"), QueueMembership("support")]
    assert member_changes(wanted, True, "lunch", on_node, QUEUES) == [
        SetPause("sales", True, "lunch")]
    assert member_changes(wanted, False, "", {"sales": FREE, "support": FREE}, QUEUES) == []


def test_a_pause_or_its_reason_changed_elsewhere_is_set_here() -> None:
    wanted = [QueueMembership("support")]
    assert member_changes(wanted, True, "break", {"support": NodeMember(True, "lunch")},
                          QUEUES) == [SetPause("support", True, "break")]
    assert member_changes(wanted, False, "", {"support": NodeMember(True, "lunch")},
                          QUEUES) == [SetPause("support", False, "")]
    # an unpaused member's leftover reason is no difference
    assert member_changes(wanted, False, "", {"support": NodeMember(False, "old")}, QUEUES) == []



async def test_the_versions_a_node_followed_are_stored_per_node(store: Database) -> None:
    repo = AgentRepository(store)
    await repo.record_followed("node1", {"1001": "v1", "1002": "v1"})
    await repo.record_followed("node1", {"1001": "v2"})
    await repo.record_followed("node2", {"1001": "v0"})
    await repo.record_followed("node2", {})
    assert await repo.followed_by("node1") == {"1001": "v2", "1002": "v1"}
    assert await repo.followed_by("node2") == {"1001": "v0"}
    assert await repo.followed_by("node3") == {}


# ---- holds for a call on another node --------------------------------------------------------
T = 1000.0
HOLD = SetPause("support", True, WRAPUP_HOLD_REASON)
HELD = NodeMember(True, WRAPUP_HOLD_REASON, 30.0)


def holds(call_ends: list[tuple[str, float]], wrapup_ends: list[tuple[str, float]],
          on_node: dict[str, dict[str, NodeMember]], now: float,
          talking: frozenset[str] = frozenset()) -> dict[str, list[SetPause]]:
    return holds_for_calls_elsewhere(talking, call_ends, wrapup_ends, on_node, now)


def test_a_call_ended_elsewhere_holds_its_agent_in_each_queue_for_that_queue_s_wrap_up() -> None:
    free = NodeMember(False, "", 30.0)
    on_node = {"1001": {"sales": NodeMember(False, "", 10.0), "support": free},
               "1002": {"support": free}}
    assert holds([("1001", T)], [], on_node, T + 1) == {
        "1001": [SetPause("sales", True, WRAPUP_HOLD_REASON), HOLD]}
    # the shorter wrap-up is over first; a queue with none is never held
    held = {"1001": {"sales": NodeMember(True, WRAPUP_HOLD_REASON, 10.0), "support": HELD,
                     "billing": NodeMember(False, "", 0.0)}}
    assert holds([("1001", T)], [], held, T + 12) == {
        "1001": [SetPause("sales", False, "")]}
    assert holds([("1001", T)], [], held, T + 31) == {
        "1001": [SetPause("sales", False, ""), SetPause("support", False, "")]}


def test_an_early_end_after_the_latest_call_lets_go_and_one_before_it_does_not() -> None:
    on_node = {"1001": {"support": HELD}}
    assert holds([("1001", T)], [("1001", T + 5)], on_node, T + 6) == {
        "1001": [SetPause("support", False, "")]}
    # a *47 while the call was up does not end the wrap-up after it; the latest call counts
    assert holds([("1001", T - 20), ("1001", T)], [("1001", T - 5)], on_node,
                        T + 6) == {}
    assert holds([("1001", T - 20)], [("1001", T - 5)],
                        {"1001": {"support": NodeMember(False, "", 30.0)}}, T - 4) == {}


def test_an_agent_s_own_pause_is_left_alone_and_a_hold_nobody_needs_is_let_go() -> None:
    lunch = {"1001": {"support": NodeMember(True, "lunch", 30.0)}}
    assert holds([("1001", T)], [], lunch, T + 1) == {}
    assert holds([], [], lunch, T + 1) == {}
    # held by an earlier run of this controller, whose call is long over
    assert holds([], [], {"1001": {"support": HELD}}, T) == {
        "1001": [SetPause("support", False, "")]}


def test_a_call_up_elsewhere_holds_its_agent_busy_then_its_wrap_up_takes_over() -> None:
    free = {"1001": {"support": NodeMember(False, "", 30.0)}}
    busy = {"1001": {"support": NodeMember(True, BUSY_HOLD_REASON, 30.0)}}
    assert holds([], [], free, T, talking=frozenset({"1001"})) == {
        "1001": [SetPause("support", True, BUSY_HOLD_REASON)]}
    assert holds([], [], busy, T, talking=frozenset({"1001"})) == {}
    assert holds([("1001", T)], [], busy, T + 1) == {"1001": [HOLD]}  # the call is over
    # a queue with no wrap-up: over with the call; an earlier call's wrap-up does not count
    no_wrapup = {"1001": {"support": NodeMember(True, BUSY_HOLD_REASON, 0.0)}}
    assert holds([("1001", T)], [], no_wrapup, T + 1) == {
        "1001": [SetPause("support", False, "")]}
    assert holds([("1001", T - 5)], [], {"1001": {"support": HELD}}, T,
                 talking=frozenset({"1001"})) == {
        "1001": [SetPause("support", True, BUSY_HOLD_REASON)]}
    lunch = {"1001": {"support": NodeMember(True, "lunch", 30.0)}}
    assert holds([], [], lunch, T, talking=frozenset({"1001"})) == {}
