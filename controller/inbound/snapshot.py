"""Immutable pictures of one queue's live state, the input of the pure inbound decisions.

The queue service builds a ``QueueSnapshot`` from its live model whenever it asks ``rules``;
the decisions never see the model itself, so tests build snapshots by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.state.model import AgentState


@dataclass(frozen=True)
class AgentSnapshot:
    """A logged-in agent of the queue: its live state and since when it has been in it."""

    agent_id: str
    state: AgentState
    since: datetime


@dataclass(frozen=True)
class WaitingCaller:
    """A caller in the queue: ``position`` is 1-based; higher ``priority`` is served first."""

    call_id: str
    joined_at: datetime
    position: int
    priority: int = 0


@dataclass(frozen=True)
class QueueSnapshot:
    """One queue at one instant.

    ``no_agent_available_since`` is when the last available agent went away (``None`` while one
    is available or when unknown); ``recent_handle_times`` are seconds per answered call, the
    newest last.
    """

    callers: tuple[WaitingCaller, ...] = ()
    agents: tuple[AgentSnapshot, ...] = ()
    no_agent_available_since: datetime | None = None
    recent_handle_times: tuple[float, ...] = ()

    @property
    def logged_in(self) -> int:
        return len(self.agents)

    @property
    def available(self) -> int:
        return sum(1 for agent in self.agents if agent.state is AgentState.AVAILABLE)

    def position_for(self, priority: int) -> int:
        """Where a caller joining now with ``priority`` would stand (Asterisk's ordering)."""
        return 1 + sum(1 for caller in self.callers if caller.priority >= priority)
