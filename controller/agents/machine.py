"""One agent's working status as a pure machine: an event in, a decision out.

``AgentStatus`` is what the agent *chose* (logged out, available, paused with a reason): the
intent the store keeps across restarts and that every way in (phone feature code, CLI, API,
the auto-pause after missed rings) changes the same way. What the agent is doing this second
(ringing, on a call, in wrap-up) is ``state.model.AgentState``, read from Asterisk's queue
events; this machine only needs the unanswered rings from them.

``agent_transition(position, event)`` returns a ``Change`` (the new position and the queue
actions the service carries out, in order) or a ``Refusal`` (why not, nothing to do). No I/O,
no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from controller.agents.config import MISSED_REASON


class AgentStatus(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    PAUSED = "paused"


@dataclass(frozen=True)
class AgentPosition:
    """An agent's status, its pause reason ("" unless paused) and the unanswered rings in a
    row per queue (for the auto-pause)."""

    status: AgentStatus = AgentStatus.LOGGED_OUT
    reason: str = ""
    missed: Mapping[str, int] = field(default_factory=dict)


# ---- events ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogIn:
    """Join the agent's queues (again, when logged in: the queues asked for may differ)."""


@dataclass(frozen=True)
class LogOut:
    """Leave every queue."""


@dataclass(frozen=True)
class ToggleLogin:
    """``*45``: log in when out, out when in."""


@dataclass(frozen=True)
class Pause:
    """No queue calls until unpaused; ``reason`` is kept (store, AMI, queue_log)."""

    reason: str = ""


@dataclass(frozen=True)
class Unpause:
    """Take queue calls again; the reason is cleared."""


@dataclass(frozen=True)
class TogglePause:
    """``*46``: pause (no reason) when available, unpause when paused."""


@dataclass(frozen=True)
class EndWrapup:
    """``*47``: take the next call now, not after the queue's wrap-up time."""


@dataclass(frozen=True)
class RingNoAnswer:
    """A queue call rang this agent and was not answered."""

    queue: str


@dataclass(frozen=True)
class Answered:
    """The agent answered a call of ``queue``: its count of unanswered rings starts again."""

    queue: str


AgentEvent = (LogIn | LogOut | ToggleLogin | Pause | Unpause | TogglePause | EndWrapup
              | RingNoAnswer | Answered)


# ---- actions and decisions ------------------------------------------------------------------
class QueueAction(StrEnum):
    """What the service does in Asterisk, in the order given."""

    JOIN = "join"  # QueueAdd to every queue of the agent
    LEAVE = "leave"  # QueueRemove from every queue it is in
    PAUSE = "pause"  # QueuePause true with the position's reason
    UNPAUSE = "unpause"  # QueuePause false
    REJOIN = "rejoin"  # QueueRemove and QueueAdd again: app_queue forgets the last call


@dataclass(frozen=True)
class Change:
    position: AgentPosition
    actions: tuple[QueueAction, ...] = ()


@dataclass(frozen=True)
class Refusal:
    why: str


AgentTransition = Change | Refusal


def agent_transition(
    position: AgentPosition, event: AgentEvent, auto_pause: Mapping[str, int] | None = None
) -> AgentTransition:
    """What ``event`` does to an agent at ``position``; ``auto_pause`` maps a queue to the
    unanswered rings in a row that pause the agent with reason ``missed``."""
    status = position.status
    match event:
        case ToggleLogin():
            toggled: AgentEvent = LogIn() if status is AgentStatus.LOGGED_OUT else LogOut()
            return agent_transition(position, toggled)
        case TogglePause():
            toggled = Unpause() if status is AgentStatus.PAUSED else Pause()
            return agent_transition(position, toggled)
        case LogIn():
            # logging in again joins again (the queues asked for may differ) and unpauses
            again = (QueueAction.UNPAUSE,) if status is AgentStatus.PAUSED else ()
            return Change(AgentPosition(AgentStatus.AVAILABLE), (QueueAction.JOIN, *again))
        case LogOut():
            if status is AgentStatus.LOGGED_OUT:
                return Refusal("not logged in")
            return Change(AgentPosition(), (QueueAction.LEAVE,))
        case Pause(reason):
            if status is AgentStatus.LOGGED_OUT:
                return Refusal("not logged in")
            if status is AgentStatus.PAUSED and position.reason == reason:
                return Refusal("already paused" + (f" ({reason})" if reason else ""))
            return Change(AgentPosition(AgentStatus.PAUSED, reason), (QueueAction.PAUSE,))
        case Unpause():
            if status is not AgentStatus.PAUSED:
                return Refusal("not paused")
            return Change(AgentPosition(AgentStatus.AVAILABLE), (QueueAction.UNPAUSE,))
        case EndWrapup():
            if status is AgentStatus.LOGGED_OUT:
                return Refusal("not logged in")
            return Change(position, (QueueAction.REJOIN,))
        case RingNoAnswer(queue):
            if status is not AgentStatus.AVAILABLE:
                return Change(position)  # a ring racing a pause or logout: nothing to count
            missed = {**position.missed, queue: position.missed.get(queue, 0) + 1}
            limit = (auto_pause or {}).get(queue)
            if limit is not None and missed[queue] >= limit:
                return Change(AgentPosition(AgentStatus.PAUSED, MISSED_REASON),
                              (QueueAction.PAUSE,))
            return Change(replace(position, missed=missed))
        case Answered(queue):
            missed = {q: n for q, n in position.missed.items() if q != queue}
            return Change(replace(position, missed=missed))
