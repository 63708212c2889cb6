"""The live model follows AMI events and snapshots."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from controller.asterisk.events import (
    CoreShowChannel,
    QueueEntry,
    QueueMember,
    QueueParams,
    RejectedEvent,
    parse_ami,
)
from controller.state.model import (
    BUSY_HOLD_REASON,
    WRAPUP_HOLD_REASON,
    AgentState,
    LiveModel,
    Member,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Parsed = TypeVar("Parsed")


def parsed(kind: type[Parsed], headers: dict[str, Any]) -> Parsed:
    """``headers`` parsed, checked to be the ``kind`` of event the test means."""
    event = parse_ami(headers)
    assert isinstance(event, kind), event
    return event


def apply(model: LiveModel, headers: dict[str, Any]) -> bool:
    """Apply one AMI message as the controller does: parsed into its type first."""
    return model.apply(parse_ami(headers))


def test_caller_join_leave_renumbers_positions() -> None:
    clock = Clock()
    model = LiveModel(clock)
    changes: list[tuple[str, str]] = []
    model.subscribe(lambda what, key: changes.append((what, key)))
    for n in (1, 2, 3):
        apply(model, {"Event": "QueueCallerJoin", "Queue": "support", "Uniqueid": f"u{n}",
                     "Channel": f"PJSIP/t-{n}", "Position": str(n), "CallerIDNum": "555"})
        clock.now += 10
    queue = model.queues["support"]
    assert queue.oldest_wait(clock.now) == 30
    apply(model, {"Event": "QueueCallerLeave", "Queue": "support", "Uniqueid": "u1"})
    assert [c.position for c in sorted(queue.callers.values(), key=lambda c: c.uniqueid)] == [1, 2]
    apply(model, {"Event": "Hangup", "Uniqueid": "u3", "Cause": "16"})
    assert list(queue.callers) == ["u2"]
    assert ("caller_join", "support") in changes
    assert ("caller_leave", "support") in changes


def take_a_call(model: LiveModel, base: dict[str, str], member: Member, now: float) -> None:
    """The member's phone rings (so it shows), is answered (so it shows), and hangs up."""
    apply(model, {"Event": "QueueMemberStatus", **base, "Status": "6"})
    assert member.state(now) is AgentState.RINGING
    apply(model, {"Event": "QueueMemberStatus", **base, "Status": "2", "InCall": "1"})
    assert member.state(now) is AgentState.ON_CALL
    apply(model, {"Event": "AgentComplete", **base, "Uniqueid": "u9", "TalkTime": "30"})
    apply(model, {"Event": "QueueMemberStatus", **base, "Status": "1", "InCall": "0"})


def test_member_states_and_wrapup() -> None:
    clock = Clock()
    model = LiveModel(clock)
    base = {"Queue": "support", "Interface": "PJSIP/1001", "MemberName": "1001"}
    apply(model, {"Event": "QueueMemberAdded", **base, "Status": "1", "Paused": "0",
                 "Wrapuptime": "5"})
    member = model.queues["support"].members["PJSIP/1001"]
    assert member.state(clock.now) is AgentState.AVAILABLE
    take_a_call(model, base, member, clock.now)
    assert member.state(clock.now) is AgentState.WRAPUP
    clock.now += 6
    assert member.state(clock.now) is AgentState.AVAILABLE
    apply(model, {"Event": "QueueMemberPause", **base, "Paused": "1", "PausedReason": "lunch"})
    assert member.state(clock.now) is AgentState.PAUSED
    assert member.paused_reason == "lunch"
    counts = model.queues["support"].agents_by_state(clock.now)
    assert counts[AgentState.PAUSED] == 1
    apply(model, {"Event": "QueueMemberRemoved", **base})
    assert model.queues["support"].members == {}


def test_a_member_held_for_a_call_elsewhere_is_on_it_or_in_its_wrap_up_unless_busy_here() -> None:
    clock = Clock()
    model = LiveModel(clock, queue_wrapup={"support": 20})
    base = {"Queue": "support", "Interface": "PJSIP/1001", "MemberName": "1001"}
    apply(model, {"Event": "QueueMemberAdded", **base, "Status": "1", "Paused": "0"})
    apply(model, {"Event": "QueueMemberPause", **base, "Paused": "1",
                 "PausedReason": WRAPUP_HOLD_REASON})
    member = model.queues["support"].members["PJSIP/1001"]
    assert (member.held, member.state(clock.now)) == (True, AgentState.WRAPUP)
    assert member.own_state(clock.now) is AgentState.AVAILABLE  # as app_queue has it
    assert model.queues["support"].agents_by_state(clock.now)[AgentState.PAUSED] == 0
    # offered a call here just before the hold: it rings, then talks, then wraps up here too
    take_a_call(model, base, member, clock.now)
    assert member.own_state(clock.now) is AgentState.WRAPUP
    apply(model, {"Event": "QueueMemberPause", **base, "Paused": "1", "PausedReason": "lunch"})
    assert (member.held, member.state(clock.now)) == (False, AgentState.PAUSED)
    apply(model, {"Event": "QueueMemberPause", **base, "Paused": "1",
                 "PausedReason": BUSY_HOLD_REASON})  # its next call is up on another node
    clock.now += 30
    assert (member.held, member.state(clock.now)) == (True, AgentState.ON_CALL)
    assert member.own_state(clock.now) is AgentState.AVAILABLE


def test_a_queues_configured_wrapup_shows_in_every_queue_of_the_agent() -> None:
    clock = Clock()
    model = LiveModel(clock, queue_wrapup={"support": 20, "sales": 5})
    for queue in ("support", "sales", "billing"):
        apply(model, {"Event": "QueueMemberAdded", "Queue": queue, "Interface": "PJSIP/1001",
                     "Status": "1", "Paused": "0", "Wrapuptime": "0"})
    apply(model, {"Event": "AgentComplete", "Queue": "support", "Interface": "PJSIP/1001",
                 "Uniqueid": "u1", "TalkTime": "30"})
    states = {name: q.members["PJSIP/1001"].state(clock.now) for name, q in model.queues.items()}
    # shared_lastcall: a call in support starts wrap-up in sales too; billing has none
    assert states == {"support": AgentState.WRAPUP, "sales": AgentState.WRAPUP,
                      "billing": AgentState.AVAILABLE}
    clock.now += 6
    assert model.queues["sales"].members["PJSIP/1001"].state(clock.now) is AgentState.AVAILABLE
    assert model.queues["support"].agents_by_state(clock.now)[AgentState.WRAPUP] == 1
    clock.now += 15
    assert model.queues["support"].members["PJSIP/1001"].state(clock.now) is AgentState.AVAILABLE


def test_a_members_own_wrapup_overrides_its_queues() -> None:
    clock = Clock()
    model = LiveModel(clock, queue_wrapup={"support": 20})
    apply(model, {"Event": "QueueMemberAdded", "Queue": "support", "Interface": "PJSIP/1001",
                 "Status": "1", "Wrapuptime": "3"})
    apply(model, {"Event": "AgentComplete", "Queue": "support", "Interface": "PJSIP/1001",
                 "Uniqueid": "u1"})
    clock.now += 4
    assert model.queues["support"].members["PJSIP/1001"].state(clock.now) is AgentState.AVAILABLE


def test_a_snapshot_keeps_a_wrapup_that_began_before_it() -> None:
    clock = Clock()
    model = LiveModel(clock, queue_wrapup={"support": 30})
    member = parsed(QueueMember, {"Event": "QueueMember", "Queue": "support",
                                  "Location": "PJSIP/1002", "Status": "1", "Paused": "0",
                                  "InCall": "0", "Wrapuptime": "0",
                                  "LastCall": str(int(clock.now) - 10)})
    model.load_snapshot(queue_status=[member], channels=[])
    agent = model.queues["support"].members["PJSIP/1002"]
    assert agent.state(clock.now) is AgentState.WRAPUP
    assert agent.state(clock.now + 21) is AgentState.AVAILABLE


def test_snapshot_replaces_everything() -> None:
    clock = Clock()
    model = LiveModel(clock)
    apply(model, {"Event": "QueueCallerJoin", "Queue": "stale", "Uniqueid": "old"})
    queue_status: list[QueueParams | QueueMember | QueueEntry] = [
        parsed(QueueParams, {"Event": "QueueParams", "Queue": "support",
                             "Strategy": "leastrecent"}),
        parsed(QueueMember, {"Event": "QueueMember", "Queue": "support", "Location": "PJSIP/1002",
                             "Name": "1002", "Status": "1", "Paused": "0", "InCall": "0"}),
        parsed(QueueEntry, {"Event": "QueueEntry", "Queue": "support", "Uniqueid": "c1",
                            "Position": "1", "Wait": "42", "Channel": "PJSIP/trunk-1"}),
    ]
    channel = parsed(CoreShowChannel, {"Event": "CoreShowChannel", "Uniqueid": "c1",
                                       "Channel": "PJSIP/trunk-1", "Duration": "00:01:05",
                                       "Linkedid": "c1"})
    model.load_snapshot(queue_status=queue_status, channels=[channel])
    assert "stale" not in model.queues
    support = model.queues["support"]
    assert support.strategy == "leastrecent"
    assert "PJSIP/1002" in support.members
    assert support.oldest_wait(clock.now) == 42
    assert model.channels["c1"].created_at == clock.now - 65


def test_a_channel_keeps_the_snapshot_of_its_latest_event() -> None:
    clock = Clock()
    model = LiveModel(clock)
    channel = {"Uniqueid": "c1", "Channel": "PJSIP/trunk-1", "Linkedid": "c1"}
    apply(model, {"Event": "Newchannel", **channel, "ChannelStateDesc": "Ring"})
    clock.now += 5
    apply(model, {"Event": "Newstate", **channel, "ChannelStateDesc": "Up"})
    live = model.channels["c1"]
    assert (live.latest.channel, live.state, live.created_at) == ("PJSIP/trunk-1", "Up", 1000.0)
    assert apply(model, {"Event": "Newstate", **channel, "Uniqueid": "gone"}) is False
    apply(model, {"Event": "Hangup", **channel, "Cause": "16"})
    assert model.channels == {}


def test_unknown_events_are_ignored_and_malformed_ones_never_reach_the_model() -> None:
    model = LiveModel(Clock())
    assert apply(model, {"Event": "SomethingNew", "X": "1"}) is False
    with pytest.raises(RejectedEvent, match="no Uniqueid header"):
        apply(model, {"Event": "Newchannel"})
    assert model.channels == {}
