"""Overflow rules at their thresholds, rule order, entry chains and call routing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.inbound.config import InboundConfig
from controller.inbound.destinations import (
    AnnouncementDestination,
    QueueDestination,
    VoicemailDestination,
)
from controller.inbound.hours import Override
from controller.inbound.rules import (
    Divert,
    Enqueue,
    Overflow,
    Reject,
    Stay,
    admit,
    caller_priority,
    evaluate,
    route_call,
)
from controller.inbound.snapshot import AgentSnapshot, QueueSnapshot, WaitingCaller
from controller.state.model import AgentState

NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # a Monday


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def inbound_with(rules: list[dict[str, Any]], **queue: Any) -> InboundConfig:
    return InboundConfig.model_validate(
        {"queues": {"sales": {"overflow": rules, **queue}, "support": {}}}
    )


def evaluate_rule(
    rule: dict[str, Any], snapshot: QueueSnapshot, caller: WaitingCaller
) -> Stay | Overflow:
    inbound = inbound_with([{**rule, "destination": "queue:support"}])
    return evaluate("sales", inbound.queues["sales"], snapshot, caller, NOW)


AGENT_BUSY = AgentSnapshot("1001", AgentState.ON_CALL, ago(0))
AGENT_FREE = AgentSnapshot("1002", AgentState.AVAILABLE, ago(0))
STAFFED = QueueSnapshot(agents=(AGENT_FREE,))


@pytest.mark.parametrize(("waited", "fires"), [(59.9, False), (60, True), (61, True)])
def test_max_wait_at_threshold(waited: float, fires: bool) -> None:
    caller = WaitingCaller("c", ago(waited), 1)
    decision = evaluate_rule({"kind": "max_wait", "seconds": 60}, STAFFED, caller)
    assert isinstance(decision, Overflow) is fires


@pytest.mark.parametrize(("position", "fires"), [(3, False), (4, True)])
def test_max_callers_at_threshold(position: int, fires: bool) -> None:
    caller = WaitingCaller("c", NOW, position)
    decision = evaluate_rule({"kind": "max_callers", "callers": 3}, STAFFED, caller)
    assert isinstance(decision, Overflow) is fires


def test_no_agents_logged_in_fires_at_once() -> None:
    caller = WaitingCaller("c", NOW, 1)
    decision = evaluate_rule({"kind": "no_agents"}, QueueSnapshot(), caller)
    assert isinstance(decision, Overflow)
    assert decision.reason == "no agent logged in"
    staffed_busy = QueueSnapshot(agents=(AGENT_BUSY,))
    assert evaluate_rule({"kind": "no_agents"}, staffed_busy, caller) == Stay()


@pytest.mark.parametrize(("unavailable_for", "fires"), [(29, False), (30, True)])
def test_no_agents_available_for_seconds(unavailable_for: float, fires: bool) -> None:
    snapshot = QueueSnapshot(agents=(AGENT_BUSY,), no_agent_available_since=ago(unavailable_for))
    rule = {"kind": "no_agents", "seconds": 30}
    decision = evaluate_rule(rule, snapshot, WaitingCaller("c", NOW, 1))
    assert isinstance(decision, Overflow) is fires


def test_no_agents_stays_while_one_is_available() -> None:
    snapshot = QueueSnapshot(agents=(AGENT_FREE,), no_agent_available_since=ago(100))
    rule = {"kind": "no_agents", "seconds": 0}
    assert evaluate_rule(rule, snapshot, WaitingCaller("c", NOW, 1)) == Stay()


@pytest.mark.parametrize(("position", "fires"), [(2, False), (3, True)])
def test_estimated_wait_above_threshold(position: int, fires: bool) -> None:
    # one agent just started a call, AHT 100 s: position p waits p * 100 s
    snapshot = QueueSnapshot(agents=(AGENT_BUSY,), recent_handle_times=(50.0, 150.0))
    rule = {"kind": "estimated_wait_above", "seconds": 200}
    decision = evaluate_rule(rule, snapshot, WaitingCaller("c", NOW, position))
    assert isinstance(decision, Overflow) is fires


def test_estimated_wait_uses_the_default_handle_time_and_fires_without_agents() -> None:
    rules = [{"kind": "estimated_wait_above", "seconds": 100, "destination": "voicemail:1"}]
    inbound = inbound_with(rules, default_handle_time=101)
    snapshot = QueueSnapshot(agents=(AGENT_BUSY,))
    caller = WaitingCaller("c", NOW, 1)
    assert isinstance(evaluate("sales", inbound.queues["sales"], snapshot, caller, NOW), Overflow)
    empty = evaluate("sales", inbound.queues["sales"], QueueSnapshot(), caller, NOW)
    assert isinstance(empty, Overflow)
    assert "unbounded" in empty.reason


def test_first_firing_rule_in_config_order_wins() -> None:
    inbound = inbound_with(
        [
            {"kind": "max_callers", "callers": 10, "destination": "queue:support"},
            {"name": "slow", "kind": "max_wait", "seconds": 5, "destination": "voicemail:1"},
            {"kind": "no_agents", "destination": "announcement:closed"},
        ]
    )
    decision = evaluate(
        "sales", inbound.queues["sales"], QueueSnapshot(), WaitingCaller("c", ago(10), 1), NOW
    )
    assert decision == Overflow(
        "sales", "slow", "max_wait", VoicemailDestination(mailbox="1"), "waited 10s >= 5s"
    )
    early = evaluate(
        "sales", inbound.queues["sales"], QueueSnapshot(), WaitingCaller("c", NOW, 1), NOW
    )
    assert isinstance(early, Overflow)
    assert (early.rule_id, early.destination) == (
        "overflow[2]",
        AnnouncementDestination(sound="closed"),
    )


CHAIN = InboundConfig.model_validate(
    {
        "queues": {
            "sales": {
                "vip_callers": ["+447700900001"],
                "overflow": [{"kind": "no_agents", "destination": "queue:support"}],
            },
            "support": {
                "vip_priority": 5,
                "vip_callers": ["07700 900001"],
                "overflow": [{"kind": "max_callers", "callers": 1, "destination": "voicemail:9"}],
            },
        },
        "schedules": {
            "office": {
                "timezone": "Europe/London",
                "hours": {"mon": ["09:00-17:00"]},
                "after_hours": "queue:support",
            },
            "shop": {"timezone": "Europe/London", "after_hours": "announcement:closed"},
        },
        "numbers": {
            "+442079460000": {"queue": "sales", "schedule": "office"},
            "+442079460001": {"queue": "sales", "schedule": "shop"},
            "+442079460002": {"queue": "sales"},
        },
        "default_region": "GB",
    }
)


def snapshots(**by_queue: QueueSnapshot) -> Any:
    return lambda queue: by_queue.get(queue, QueueSnapshot())


def test_entry_follows_a_chain_to_the_queue_that_keeps_the_caller() -> None:
    decision = admit(CHAIN, "sales", "+441", NOW, snapshots(support=STAFFED))
    assert isinstance(decision, Enqueue)
    assert decision.queue == "support"
    assert [step.rule_id for step in decision.overflows] == ["overflow[0]"]


def test_entry_chain_ends_at_a_non_queue_destination() -> None:
    waiting = WaitingCaller("x", NOW, 1)
    full = QueueSnapshot(callers=(waiting,), agents=(AGENT_BUSY,))
    decision = admit(CHAIN, "sales", "+441", NOW, snapshots(support=full))
    assert decision == Divert(
        VoicemailDestination(mailbox="9"),
        "overflow",
        (
            Overflow(
                "sales",
                "overflow[0]",
                "no_agents",
                QueueDestination(queue="support"),
                "no agent logged in",
            ),
            Overflow(
                "support",
                "overflow[0]",
                "max_callers",
                VoicemailDestination(mailbox="9"),
                "position 2 > 1 callers",
            ),
        ),
    )


def test_vip_caller_goes_ahead_of_normal_callers() -> None:
    waiting = WaitingCaller("x", NOW, 1)
    full = QueueSnapshot(callers=(waiting,), agents=(AGENT_BUSY,))
    decision = admit(CHAIN, "sales", "+447700900001", NOW, snapshots(support=full))
    # priority 5 puts the VIP at position 1, so max_callers = 1 keeps it
    assert decision == Enqueue("support", 5, decision.overflows)


def test_caller_priority_matches_national_and_international_forms() -> None:
    assert caller_priority(CHAIN.queues["sales"], "07700900001", "GB") == 10
    assert caller_priority(CHAIN.queues["sales"], "+447700900002", "GB") == 0


def test_route_unknown_number_is_rejected() -> None:
    decision = route_call(CHAIN, "+449999", "+441", NOW, snapshots())
    assert decision == Reject("number +449999 is not configured")


def test_route_open_hours_enqueue_in_the_number_queue() -> None:
    decision = route_call(CHAIN, "+442079460000", "+441", NOW, snapshots(sales=STAFFED))
    assert decision == Enqueue("sales", 0)


def test_route_after_hours_to_a_queue_is_admitted_there() -> None:
    evening = NOW.replace(hour=18)
    decision = route_call(CHAIN, "+442079460000", "+441", evening, snapshots(support=STAFFED))
    assert decision == Enqueue("support", 0, (), after_hours=True)


def test_route_after_hours_to_an_announcement() -> None:
    decision = route_call(CHAIN, "+442079460001", "+441", NOW, snapshots(sales=STAFFED))
    assert decision == Divert(AnnouncementDestination(sound="closed"), "after_hours")


def test_route_without_schedule_is_always_open_and_matches_national_did() -> None:
    late = NOW.replace(hour=3)
    decision = route_call(CHAIN, "02079460002", "+441", late, snapshots(sales=STAFFED))
    assert decision == Enqueue("sales", 0)


def test_a_supervisors_override_beats_the_hours_both_ways() -> None:
    # shop has no hours (always closed): opened now, the call goes to the number's queue
    opened = route_call(CHAIN, "+442079460001", "+441", NOW, snapshots(sales=STAFFED),
                        {"shop": Override.OPEN})
    assert opened == Enqueue("sales", 0)
    # office is open at NOW: closed now, the call goes where after-hours calls go
    closed = route_call(CHAIN, "+442079460000", "+441", NOW, snapshots(support=STAFFED),
                        {"office": Override.CLOSED})
    assert closed == Enqueue("support", 0, (), after_hours=True)
