"""The controller's own estimate of a waiting caller's remaining wait.

Model: every serving agent (available, busy or in wrap-up; paused agents serve nobody) frees up
at a known time, then takes one caller per cycle of ``AHT + wrapup`` seconds, where AHT is the
mean of the recent handle times (the queue's default while none are known). An available agent
is free now; a busy one (ringing or on a call) after ``max(AHT - elapsed, 0)`` plus wrap-up;
one in wrap-up after ``max(wrapup - elapsed, 0)``. Callers are served in order by whichever
agent frees up first, so the caller at position ``p`` is answered at the ``p``-th free moment
of that schedule. As each agent frees up within one cycle, that moment is
``sorted(free)[(p-1) % n] + ((p-1) // n) * cycle`` for ``n`` serving agents.

With ``n`` agents all starting a call now this gives ``ceil(p / n) * cycle``; the fluid
approximation ``p * AHT / n`` is its average. ``None`` means "infinite": nobody is serving.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from statistics import fmean

from controller.inbound.snapshot import AgentSnapshot
from controller.state.model import AgentState


def average_handle_time(recent: Sequence[float], default: float) -> float:
    return fmean(recent) if recent else default


def estimate_wait(
    position: int,
    agents: Sequence[AgentSnapshot],
    now: datetime,
    handle_time: float,
    wrapup: float = 0.0,
) -> float | None:
    """Seconds until the caller at 1-based ``position`` reaches an agent; ``None`` if never."""
    if position < 1:
        raise ValueError("position is 1-based")
    cycle = handle_time + wrapup
    free_at: list[float] = []
    for agent in agents:
        elapsed = max((now - agent.since).total_seconds(), 0.0)
        if agent.state is AgentState.AVAILABLE:
            free_at.append(0.0)
        elif agent.state in (AgentState.RINGING, AgentState.ON_CALL):
            free_at.append(max(handle_time - elapsed, 0.0) + wrapup)
        elif agent.state is AgentState.WRAPUP:
            free_at.append(max(wrapup - elapsed, 0.0))
    if not free_at:
        return None
    # every agent frees up within one cycle, so serving callers in order of free moments takes
    # whole rounds: each round every agent takes one caller and moves one cycle later
    rounds, index = divmod(position - 1, len(free_at))
    return sorted(free_at)[index] + rounds * cycle
