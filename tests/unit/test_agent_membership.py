"""Each node's members follow the agents' stored positions: what to change, and the versions
each node followed, stored per node on both stores."""

from __future__ import annotations

from controller.agents.membership import (
    AddMember,
    NodeMember,
    RemoveMember,
    SetPause,
    member_changes,
)
from controller.inbound.repository import AgentRepository, QueueMembership
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
