"""Where an inbound call goes: on arrival (``route_call``) and while it waits (``evaluate``).

``evaluate`` checks a queue's overflow rules in config order against a snapshot; the first rule
that fires wins. The router calls it when a caller arrives and at least once a second while the
caller waits. ``admit`` is the arrival check for one queue: it follows queue-to-queue overflow
chains (loop-free, the config rejects loops) until a queue keeps the caller or a non-queue
destination takes it. ``route_call`` adds the number lookup, the schedule and VIP priority.
Pure: the clock and the queue snapshots are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import phonenumbers

from controller.inbound.config import (
    EstimatedWaitRule,
    InboundConfig,
    MaxCallersRule,
    MaxWaitRule,
    NoAgentsRule,
    OverflowRule,
    QueueConfig,
)
from controller.inbound.destinations import AnyDestination, QueueDestination
from controller.inbound.estimate import average_handle_time, estimate_wait
from controller.inbound.hours import Override, is_open
from controller.inbound.snapshot import QueueSnapshot, WaitingCaller

SnapshotOf = Callable[[str], QueueSnapshot]


@dataclass(frozen=True)
class Stay:
    """Keep waiting in the queue."""


@dataclass(frozen=True)
class Overflow:
    """Leave ``queue`` for ``destination`` because rule ``rule_id`` fired (``reason`` says why)."""

    queue: str
    rule_id: str
    kind: str
    destination: AnyDestination
    reason: str


WaitDecision = Stay | Overflow


@dataclass(frozen=True)
class Enqueue:
    """Put the caller into ``queue`` with ``priority``, after the entry ``overflows`` taken."""

    queue: str
    priority: int
    overflows: tuple[Overflow, ...] = ()
    after_hours: bool = False


@dataclass(frozen=True)
class Divert:
    """Send the caller to a non-queue destination (after hours, or by an entry overflow)."""

    destination: AnyDestination
    reason: Literal["after_hours", "overflow"]
    overflows: tuple[Overflow, ...] = ()


@dataclass(frozen=True)
class Reject:
    """The call cannot be routed (unknown number)."""

    reason: str


RouteDecision = Enqueue | Divert | Reject


def estimated_wait(
    queue_cfg: QueueConfig, snapshot: QueueSnapshot, caller: WaitingCaller, now: datetime
) -> float | None:
    """``caller``'s remaining wait by ``estimate_wait``, with the queue's recent handle times
    (its ``default_handle_time`` while none are known); ``None``: nobody is serving."""
    return estimate_wait(
        caller.position,
        snapshot.agents,
        now,
        average_handle_time(snapshot.recent_handle_times, queue_cfg.default_handle_time),
        queue_cfg.wrapup,
    )


def _fires(
    rule: OverflowRule,
    queue_cfg: QueueConfig,
    snapshot: QueueSnapshot,
    caller: WaitingCaller,
    now: datetime,
) -> str | None:
    """Why ``rule`` fires for ``caller`` now, or ``None`` when it does not."""
    if isinstance(rule, MaxWaitRule):
        waited = (now - caller.joined_at).total_seconds()
        return f"waited {waited:.0f}s >= {rule.seconds:g}s" if waited >= rule.seconds else None
    if isinstance(rule, MaxCallersRule):
        if caller.position > rule.callers:
            return f"position {caller.position} > {rule.callers} callers"
        return None
    if isinstance(rule, NoAgentsRule):
        if snapshot.logged_in == 0:
            return "no agent logged in"
        since = snapshot.no_agent_available_since
        if rule.seconds is None or snapshot.available > 0 or since is None:
            return None
        idle = (now - since).total_seconds()
        return f"no agent available for {idle:.0f}s" if idle >= rule.seconds else None
    if isinstance(rule, EstimatedWaitRule):
        estimate = estimated_wait(queue_cfg, snapshot, caller, now)
        if estimate is None:
            return "no agent serving: wait is unbounded"
        if estimate > rule.seconds:
            return f"estimated wait {estimate:.0f}s > {rule.seconds:g}s"
        return None
    raise TypeError(f"unknown overflow rule {rule!r}")


def evaluate(
    queue: str,
    queue_cfg: QueueConfig,
    snapshot: QueueSnapshot,
    caller: WaitingCaller,
    now: datetime,
) -> WaitDecision:
    """Stay, or overflow by the first rule (in config order) that fires for ``caller``."""
    for index, rule in enumerate(queue_cfg.overflow):
        reason = _fires(rule, queue_cfg, snapshot, caller, now)
        if reason is not None:
            return Overflow(queue, queue_cfg.rule_id(index), rule.kind, rule.destination, reason)
    return Stay()


def normalize_number(number: str, region: str | None = None) -> str:
    """E.164 form when the number parses (national numbers need ``region``), else as given."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return number.strip()
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def caller_priority(queue_cfg: QueueConfig, caller_id: str, region: str | None = None) -> int:
    """The queue priority of a caller: ``vip_priority`` for listed callers, else 0."""
    caller = normalize_number(caller_id, region)
    vips = {normalize_number(vip, region) for vip in queue_cfg.vip_callers}
    return queue_cfg.vip_priority if caller in vips else 0


def admit(
    inbound: InboundConfig,
    queue: str,
    caller_id: str,
    now: datetime,
    snapshot_of: SnapshotOf,
    *,
    after_hours: bool = False,
) -> Enqueue | Divert:
    """Check ``queue``'s rules for a caller arriving now, following overflow chains."""
    taken: list[Overflow] = []
    while True:
        queue_cfg = inbound.queues[queue]
        priority = caller_priority(queue_cfg, caller_id, inbound.default_region)
        snapshot = snapshot_of(queue)
        arriving = WaitingCaller("", now, snapshot.position_for(priority), priority)
        decision = evaluate(queue, queue_cfg, snapshot, arriving, now)
        if isinstance(decision, Stay):
            return Enqueue(queue, priority, tuple(taken), after_hours)
        taken.append(decision)
        target = decision.destination
        if not isinstance(target, QueueDestination):
            return Divert(target, "overflow", tuple(taken))
        if any(step.queue == target.queue for step in taken):
            # only reachable with an unvalidated config: stop where the loop would begin
            return Enqueue(target.queue, priority, tuple(taken), after_hours)
        queue = target.queue


def route_call(
    inbound: InboundConfig,
    did: str,
    caller_id: str,
    now: datetime,
    snapshot_of: SnapshotOf,
    overrides: Mapping[str, Override] | None = None,
) -> RouteDecision:
    """Decide where a new call to ``did`` from ``caller_id`` goes; ``overrides``: the schedules
    a supervisor opened or closed now."""
    route = inbound.numbers.get(did) or inbound.numbers.get(
        normalize_number(did, inbound.default_region)
    )
    if route is None:
        return Reject(f"number {did} is not configured")
    if route.schedule is not None:
        schedule = inbound.schedules[route.schedule]
        if not is_open(schedule, now, (overrides or {}).get(route.schedule)):
            target = schedule.after_hours
            if isinstance(target, QueueDestination):
                return admit(inbound, target.queue, caller_id, now, snapshot_of, after_hours=True)
            return Divert(target, "after_hours")
    return admit(inbound, route.queue, caller_id, now, snapshot_of)
