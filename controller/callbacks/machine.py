"""One callback's lifecycle: events in, the next callback and the commands to carry out.

Pure: no I/O, the clock comes in with each event. The service (``service.py``) stores the
callback the machine returns before it carries out the commands, so a ``Dial`` always has a
committed attempt behind it (the attempt id is the customer channel's id, as for the dialer).

    booked --(schedule open, gap over)--> queued --(agent answers the placeholder)--> dialing
    dialing --(customer reached: answered and pressed 1)--> answered
    dialing --(not reached)--> retry --(gap over)--> queued ...  or, out of attempts, unreached
    queued --(schedule closes)--> booked (carried) or expired;  any pending --> cancelled
    queued/dialing --(taken over from a controller that is gone)--> booked / retry or unreached

"Offered" is not a state of ours: the offer is app_queue's announcement to a waiting caller,
before any callback exists. A callback exists only once it is committed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from controller.callbacks.config import CallbackConfig


class State(StrEnum):
    BOOKED = "booked"  # committed, no placeholder yet (closed, or just booked)
    QUEUED = "queued"  # its placeholder holds the caller's place in the queue
    DIALING = "dialing"  # an agent took the placeholder; the customer's attempt is out
    RETRY = "retry"  # the last attempt did not reach the customer; waiting for the gap
    ANSWERED = "answered"  # the customer was reached and bridged to the agent
    UNREACHED = "unreached"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


PENDING = frozenset({State.BOOKED, State.QUEUED, State.DIALING, State.RETRY})
OUTCOMES = (State.ANSWERED, State.UNREACHED, State.EXPIRED, State.CANCELLED)


@dataclass(frozen=True, slots=True)
class Callback:
    callback_id: str
    queue: str
    phone: str
    arrived_at: datetime  # when the caller first arrived: service level and waits count from it
    booked_at: datetime
    state: State = State.BOOKED
    attempts: int = 0  # attempts dialed (or committed to be dialed)
    not_before: datetime | None = None
    agent: str = ""  # who took the last placeholder

    @property
    def attempt_id(self) -> str:
        """The channel id of the current attempt: one id per attempt, never reused."""
        return f"cb-{self.callback_id}-{self.attempts}"

    @property
    def placeholder_id(self) -> str:
        """The channel id of the placeholder's Stasis side (the agent's end), numbered by the
        attempt it leads to: the next one while queued, the current one while dialing."""
        number = self.attempts if self.state is State.DIALING else self.attempts + 1
        return f"cbw-{self.callback_id}-{number}"


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes; ``open`` tells whether the callback's schedule is open now."""

    now: datetime
    open: bool


@dataclass(frozen=True, slots=True)
class AgentAnswered:
    now: datetime
    agent: str


@dataclass(frozen=True, slots=True)
class PlaceholderGone:
    """The placeholder left the queue without an agent (hung up, Asterisk restarted)."""

    now: datetime


@dataclass(frozen=True, slots=True)
class AttemptEnded:
    now: datetime
    reached: bool  # answered and (if required) pressed 1: a person, not a voicemail


@dataclass(frozen=True, slots=True)
class NotDialed:
    """After a restart: the attempt was committed but nothing shows it was ever dialed."""

    now: datetime


@dataclass(frozen=True, slots=True)
class Cancel:
    now: datetime


@dataclass(frozen=True, slots=True)
class TakenOver:
    """This controller took the callback over from another whose lease on it ran out: what
    that one had in its Asterisk (a placeholder, an attempt) is out of reach here."""

    now: datetime


Event = Tick | AgentAnswered | PlaceholderGone | AttemptEnded | NotDialed | Cancel | TakenOver

# -- commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaceInQueue:
    """Put a placeholder into the queue at the caller's place (by ``arrived_at``)."""


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Hang up the placeholder ``channel_id`` (and so the agent's end of it)."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class Dial:
    """Tell the agent who is called back, then originate the attempt ``attempt_id``."""

    attempt_id: str


@dataclass(frozen=True, slots=True)
class HangUpAttempt:
    attempt_id: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The callback has its outcome: count it."""

    outcome: State


Command = PlaceInQueue | Withdraw | Dial | HangUpAttempt | Finished


@dataclass(frozen=True, slots=True)
class Transition:
    callback: Callback
    commands: tuple[Command, ...] = ()
    changed: bool = True


# Beyond the ring timeout and the time to press 1: what the customer's attempt of a controller
# that is gone may still take (its announcement, the dialplan's steps) before it surely ended.
LOST_ATTEMPT_MARGIN = timedelta(seconds=60)


def _stay(callback: Callback) -> Transition:
    return Transition(callback, (), changed=False)


def _end(callback: Callback, outcome: State, *commands: Command) -> Transition:
    return Transition(
        replace(callback, state=outcome, not_before=None), (*commands, Finished(outcome))
    )


def step(callback: Callback, event: Event, policy: CallbackConfig) -> Transition:
    """The callback after ``event`` and what to do about it; an event that means nothing in
    the current state changes nothing (``changed`` False)."""
    state = callback.state
    if state not in PENDING:
        return _stay(callback)
    expires_at = callback.booked_at + timedelta(seconds=policy.expire_after)
    match event:
        case Cancel():
            commands: tuple[Command, ...] = (
                (Withdraw(callback.placeholder_id),)
                if state is State.QUEUED
                else (HangUpAttempt(callback.attempt_id), Withdraw(callback.placeholder_id))
                if state is State.DIALING
                else ()
            )
            return _end(callback, State.CANCELLED, *commands)
        case Tick(now=now, open=is_open):
            if state is State.DIALING:
                return _stay(callback)
            if now >= expires_at:
                return _end(
                    callback,
                    State.EXPIRED,
                    *((Withdraw(callback.placeholder_id),) if state is State.QUEUED else ()),
                )
            if state is State.QUEUED:
                if is_open:
                    return _stay(callback)
                if policy.when_closed == "expire":
                    return _end(callback, State.EXPIRED, Withdraw(callback.placeholder_id))
                return Transition(
                    replace(callback, state=State.BOOKED), (Withdraw(callback.placeholder_id),)
                )
            if not is_open or (callback.not_before is not None and now < callback.not_before):
                return _stay(callback)
            return Transition(
                replace(callback, state=State.QUEUED, not_before=None), (PlaceInQueue(),)
            )
        case AgentAnswered(agent=agent) if state is State.QUEUED:
            dialing = replace(
                callback, state=State.DIALING, attempts=callback.attempts + 1, agent=agent
            )
            return Transition(dialing, (Dial(dialing.attempt_id),))
        case PlaceholderGone() if state is State.QUEUED:
            return Transition(replace(callback, state=State.BOOKED))
        case AttemptEnded(now=now, reached=reached) if state is State.DIALING:
            if reached:
                return _end(callback, State.ANSWERED)
            if callback.attempts > policy.retries:
                return _end(callback, State.UNREACHED, Withdraw(callback.placeholder_id))
            retry = replace(
                callback, state=State.RETRY, not_before=now + timedelta(seconds=policy.retry_gap)
            )
            return Transition(retry, (Withdraw(callback.placeholder_id),))
        case TakenOver() if state is State.QUEUED:  # our next tick places our own placeholder
            return Transition(replace(callback, state=State.BOOKED))
        case TakenOver(now=now) if state is State.DIALING:
            # the attempt may have gone out and may still ring: it is spent (as the dialer's
            # lost attempts), and the next waits until it has surely ended, so the customer
            # is never dialed twice at once
            if callback.attempts > policy.retries:
                return _end(callback, State.UNREACHED)
            attempt_over = timedelta(seconds=policy.ring_timeout + policy.key_timeout)
            gap = max(timedelta(seconds=policy.retry_gap), attempt_over + LOST_ATTEMPT_MARGIN)
            return Transition(replace(callback, state=State.RETRY, not_before=now + gap))
        case NotDialed() if state is State.DIALING:
            return Transition(
                replace(callback, state=State.BOOKED, attempts=callback.attempts - 1),
                (Withdraw(callback.placeholder_id),),
            )
    return _stay(callback)
