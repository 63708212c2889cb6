"""Each node's members follow the agents' stored positions: what to change, and when a member
found on a node is older than the store's last word on its agent."""

from __future__ import annotations

from controller.agents.membership import (
    AddMember,
    NodeMember,
    RemoveMember,
    SetPause,
    member_changes,
    outdated_by_store,
)
from controller.inbound.repository import QueueMembership

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


def test_a_member_added_before_the_agents_last_stored_change_is_outdated() -> None:
    logged_out_at = "2026-12-02T09:00:10.500000+00:00"
    added = 1796202000.0  # 2026-12-02T09:00:00Z
    assert outdated_by_store(added, logged_out_at)
    assert not outdated_by_store(added + 10, logged_out_at)  # the same second: not sure, adopt
    assert not outdated_by_store(added + 30, logged_out_at)  # added behind our back since
    assert not outdated_by_store(0.0, logged_out_at)  # Asterisk did not say when
    assert not outdated_by_store(added, None)  # the store never heard of the agent
