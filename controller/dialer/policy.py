"""Dialing policy: may this lead be dialed now, what did a call come to, when to try again.

Pure decisions (no I/O, the clock is an argument) so the runner, the simulator and the tests
ask the same questions and get the same answers. Every refusal carries a reason and, when one
exists, the earliest instant at which the answer could change, so the runner can park a lead
instead of re-checking it every tick.

Hangup classification (Q.850 cause from the Hangup event, or the CDR disposition when no cause
is known). Asterisk's OriginateResponse says ``Reason: 0`` even for a busy callee, so it is not
used.

======================================  =========================================
cause / disposition                      result
======================================  =========================================
answered (16 or ANSWERED), AMD MACHINE   machine
answered, no agent connected in time     abandoned
answered otherwise                       human
17 user busy, BUSY                       busy
21 call rejected                         busy (a person declined; retry as busy)
18 no user responding, 19 no answer,     no_answer
16 without answer, NO ANSWER
1, 3, 22, 27, 28, 34, 38, 41, 42, ...,  failed
CONGESTION, FAILED, anything unknown
======================================  =========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from controller.dialer.settings import CampaignSettings
from controller.zones import zone_named


class Result(StrEnum):
    """What one call attempt came to; the same words label the metrics."""

    HUMAN = "human"
    MACHINE = "machine"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    ABANDONED = "abandoned"
    # Nothing is known of it after a restart (no channel, no AstDB record): the controller died
    # between the claim's commit and the originate. The lead gets its attempt back.
    NOT_DIALED = "not_dialed"
    # Its worker died (its lease ran out) and it was settled by another: it may have been
    # dialed, and its call may still be up on the dead worker's node, so its attempt is spent
    # and the lead waits until that call has surely ended.
    LOST = "lost"


CAUSE_NORMAL_CLEARING = 16
_CAUSE_RESULTS = {17: Result.BUSY, 21: Result.BUSY, 18: Result.NO_ANSWER, 19: Result.NO_ANSWER}
_DISPOSITION_RESULTS = {
    "BUSY": Result.BUSY,
    "NO ANSWER": Result.NO_ANSWER,
    "NOANSWER": Result.NO_ANSWER,
}


def classify_hangup(
    cause: int | None,
    disposition: str | None = None,
    *,
    answered: bool = False,
    machine: bool = False,
    agent_connected: bool = True,
) -> Result:
    """Result of an attempt from its Hangup cause, CDR disposition and what the runner saw.

    ``answered`` is true once the callee picked up; ``machine`` is AMD's verdict; an answered
    human call with ``agent_connected`` false is an abandon (no agent within the legal delay).
    """
    disposition = (disposition or "").strip().upper()
    if answered or disposition == "ANSWERED":
        if machine:
            return Result.MACHINE
        return Result.HUMAN if agent_connected else Result.ABANDONED
    if cause in _CAUSE_RESULTS:
        return _CAUSE_RESULTS[cause]
    if cause == CAUSE_NORMAL_CLEARING:
        # we cancelled a ringing call at the ring timeout: the normal way an unanswered call ends
        return Result.NO_ANSWER
    if cause in (None, 0) and disposition in _DISPOSITION_RESULTS:
        return _DISPOSITION_RESULTS[disposition]
    return Result.FAILED


@dataclass(frozen=True, slots=True)
class LeadSnapshot:
    """What the policy needs to know about one lead (read from the store by the runner)."""

    phone: str
    timezone: str | None
    attempts: int = 0  # made since the lead's last recycle: what max_attempts counts
    finished: bool = False
    on_dnc: bool = False
    next_attempt_at: datetime | None = None
    last_abandoned_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DialPermission:
    """``allowed``, or the ``reason`` it is not and the earliest time it may be (None: never)."""

    allowed: bool
    reason: str = ""
    not_before: datetime | None = None


ALLOWED = DialPermission(allowed=True)


def lead_zone(name: str | None) -> ZoneInfo | None:
    """The lead's zone, or None when it is unknown (not set, or not an IANA name)."""
    return zone_named(name) if name else None


def next_window_start(at: datetime, zone: ZoneInfo, start: time, end: time) -> datetime:
    """``at`` if it lies in the daily [start, end) window of ``zone``, else the next start."""
    local = at.astimezone(zone)
    if start <= local.time() < end:
        return at
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=zone).astimezone(UTC)


def may_dial(lead: LeadSnapshot, settings: CampaignSettings, now: datetime) -> DialPermission:
    """May ``lead`` be dialed at ``now``? Checks DNC, attempts, timezone, retry and abandon
    gaps, and the calling hours in the lead's local time, in that order."""
    if lead.on_dnc:
        return DialPermission(False, "on the do-not-call list")
    if lead.finished:
        return DialPermission(False, "finished")
    if lead.attempts >= settings.max_attempts:
        return DialPermission(
            False, f"no attempts left ({lead.attempts} of {settings.max_attempts})"
        )
    zone = lead_zone(lead.timezone)
    if zone is None:
        return DialPermission(False, "timezone unknown or ambiguous")
    earliest, reason = now, ""
    if lead.next_attempt_at is not None and lead.next_attempt_at > earliest:
        earliest, reason = lead.next_attempt_at, "retry delay"
    if lead.last_abandoned_at is not None:
        gap_end = lead.last_abandoned_at + settings.recall_gap
        if gap_end > earliest:
            earliest, reason = gap_end, "re-call gap after an abandoned call"
    hours = settings.calling_hours
    opening = next_window_start(earliest, zone, hours.start, hours.end)
    if opening > earliest:
        earliest = opening
        reason = reason or "outside calling hours in the lead's local time"
    if earliest > now:
        return DialPermission(False, reason, earliest)
    return ALLOWED


def is_final(result: Result, settings: CampaignSettings) -> bool:
    """True when a lead needs no more calls after ``result`` (besides running out of attempts)."""
    if result is Result.HUMAN:
        return True
    # a message was left on the machine: calling again would only leave another one
    amd = settings.amd
    return result is Result.MACHINE and amd.enabled and amd.action == "leave_message"


# How long a lost attempt's call may still be up when the campaign sets no max_call_seconds.
UNBOUNDED_CALL_HOLD = timedelta(hours=4)


def longest_call(settings: CampaignSettings) -> timedelta:
    """How long after its originate an attempt's call can still be up: it rings at most the
    ring timeout, then talks at most ``max_call_seconds`` (or ``UNBOUNDED_CALL_HOLD``)."""
    talk = timedelta(seconds=settings.max_call_seconds) if settings.max_call_seconds else (
        UNBOUNDED_CALL_HOLD
    )
    return timedelta(seconds=settings.ring_timeout_seconds) + talk


def next_attempt_at(
    result: Result,
    attempts_made: int,
    settings: CampaignSettings,
    now: datetime,
    started_at: datetime | None = None,
) -> datetime | None:
    """When the lead may be retried after ``result`` of an attempt started at ``started_at``
    (default ``now``); None when it is finished."""
    if is_final(result, settings) or attempts_made >= settings.max_attempts:
        return None
    if result is Result.ABANDONED:
        return now + settings.recall_gap
    if result is Result.LOST:  # never while the lost call may still be up
        return max(now, (started_at or now) + longest_call(settings))
    delays = settings.retry_delay_minutes
    minutes = {
        Result.BUSY: delays.busy,
        Result.NO_ANSWER: delays.no_answer,
        Result.MACHINE: delays.machine,
        Result.FAILED: delays.failed,
    }[result]
    return now + timedelta(minutes=minutes)


class CampaignState(StrEnum):
    """A campaign's state as stored; the runner follows it on every tick."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


_S = CampaignState
# action -> (states it may be taken from, state it leads to); "stopped" is final.
CAMPAIGN_TRANSITIONS: dict[str, tuple[frozenset[CampaignState], CampaignState]] = {
    "start": (frozenset({_S.CREATED}), _S.RUNNING),
    "pause": (frozenset({_S.RUNNING}), _S.PAUSED),
    "resume": (frozenset({_S.PAUSED}), _S.RUNNING),
    "stop": (frozenset({_S.CREATED, _S.RUNNING, _S.PAUSED}), _S.STOPPED),
}


class InvalidTransition(ValueError):
    """A campaign action that its current state does not allow."""


def campaign_transition(current: str, action: str) -> CampaignState:
    """The state after ``action`` from ``current``; raises ``InvalidTransition`` if not allowed."""
    allowed_from, target = CAMPAIGN_TRANSITIONS[action]
    if current not in allowed_from:
        sources = " or ".join(sorted(allowed_from))
        raise InvalidTransition(f"cannot {action} a {current} campaign (only from {sources})")
    return target


# A finished lead's last attempt can have come to any of these but not_dialed, which gives the
# lead its attempt back (a lost one finishes a lead that has no attempt left).
RECYCLABLE_RESULTS = frozenset(Result) - {Result.NOT_DIALED}


@dataclass(frozen=True, slots=True)
class RecycleRule:
    """Which finished leads get a fresh set of attempts (VICIdial's lead recycling): those
    whose last attempt came to one of ``results`` or was disposed of as one of
    ``dispositions``, at least ``older_than`` ago. A finished lead is one with no call ahead:
    done, or out of attempts. Numbers on a do-not-call list are never recycled."""

    results: frozenset[Result] = frozenset()
    dispositions: frozenset[str] = frozenset()
    older_than: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if not self.results and not self.dispositions:
            raise ValueError("name the leads to recycle: at least one result or disposition")
        if unfit := sorted(self.results - RECYCLABLE_RESULTS):
            raise ValueError(
                f"no lead is finished by {', '.join(unfit)}; recyclable results: "
                + ", ".join(sorted(RECYCLABLE_RESULTS))
            )
        if self.older_than < timedelta(0):
            raise ValueError(f"older_than must not be negative, got {self.older_than}")

    def unknown_dispositions(self, settings: CampaignSettings) -> list[str]:
        """The rule's disposition names the campaign does not have (a typo recycles nothing)."""
        known = {disposition.name for disposition in settings.dispositions.values()}
        return sorted(self.dispositions - known)
