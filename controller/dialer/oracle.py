"""A pacer that knows every lead's outcome and ring time in advance: the simulator's bound.

No live dialer can know whether the next lead will answer or how long it will ring; the
simulated world does, and lends that knowledge through :class:`Foresight`. What the oracle does
not know is what no dialer knows either: how long each customer will talk. So its free-agent
forecast is predictive's (``pacing.free_probabilities`` from the same history) and the gap
between the two is what better knowledge of calls, not of agents, could win.

The decision, each tick: walk the leads in dialing order (the oracle may not skip or reorder
them). A lead that will never need an agent (no answer, busy, a detected machine) is launched
at once: it costs a line and nothing else. A lead that will connect ``d`` s after its launch is
launched if, connecting at ``now + d``, it would find the agents taken with probability at most
``alpha`` (``pacing.call_abandon_bound``: the same feedback on the same windows as
predictive), and so would every known connect after it (it takes the agent a later one counts
on). The demand before a connect is exact (waiting calls and the known connects before it),
the agents free by its grace's end a sum of Bernoulli variables. Otherwise the walk stops, and
the lead waits for a tick that suits its ring time.

It is a bound in spirit, not a proof: a policy with perfect knowledge of calls, judged at the
same abandon rate as predictive in the pacing bench.

Between the two, :class:`InformedPacer` is predictive told one truth, to price one piece of
knowledge at a time: ``talk-known`` knows when each agent's call will end (the free-agent
forecast is exact but for wrap-up, which stays modelled), ``calls-known`` knows which calls in
flight will connect (the demand ahead of a new call is exact; the new calls, the agents and the
timing stay modelled). What each buys over predictive is the most a better forecast of that
piece could give a live dialer.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from controller.dialer.pacing import (
    ABANDON_GRACE_SECONDS,
    PacingDecision,
    PacingInput,
    PacingSettings,
    PacingStats,
    apply_caps,
    busy_risk,
    call_abandon_bound,
    cps_budget,
    dial_level,
    forecast,
    free_probabilities,
    launches_within_bound,
)


class Foresight(Protocol):
    """What only the simulated world knows about calls."""

    def connect_times(self) -> Sequence[float]:
        """When each call in flight will need an agent (those that will), sorted."""
        ...

    def upcoming(self, count: int) -> Sequence[float | None]:
        """For the next ``count`` leads in dialing order: seconds from launch to needing an
        agent, or None for a lead that never will."""
        ...

    def talk_ends(self) -> Sequence[float]:
        """When each call an agent is on will end (its talk time is drawn when it connects)."""
        ...


@dataclass(frozen=True)
class OraclePacer:
    settings: PacingSettings
    foresight: Foresight

    def decide(self, snapshot: PacingInput, stats: PacingStats) -> PacingDecision:
        limit = min(
            self.settings.line_cap - snapshot.lines_in_use, cps_budget(snapshot, self.settings)
        )
        alpha = call_abandon_bound(snapshot.now, self.settings, stats)
        wanted = oracle_launches(
            snapshot, stats, self.foresight.connect_times(), self.foresight.upcoming(limit), alpha
        )
        launch = apply_caps(wanted, snapshot, self.settings)
        return PacingDecision(launch, dial_level(snapshot, launch), f"oracle: alpha={alpha:.4f}")


def oracle_launches(
    snapshot: PacingInput,
    stats: PacingStats,
    connect_times: Sequence[float],
    upcoming: Sequence[float | None],
    alpha: float,
) -> int:
    """How many of the ``upcoming`` leads to launch now (see the module docstring)."""
    connects = sorted(connect_times)

    def risk(position: int) -> float:
        """Abandon probability of the connect at ``position``: every call before it (in
        connect order) takes an agent first."""
        horizon = connects[position] - snapshot.now + ABANDON_GRACE_SECONDS
        free_qs = free_probabilities(snapshot, stats, horizon)
        return busy_risk(free_qs, (), snapshot.calls_waiting + position).busy()

    launches = 0
    for delay in upcoming:
        if delay is not None:
            position = bisect.bisect_right(connects, snapshot.now + delay)
            connects.insert(position, snapshot.now + delay)
            # the new connect must be safe, and must not make a later one unsafe (it takes
            # the agent that one was counting on)
            if any(risk(later) > alpha for later in range(position, len(connects))):
                del connects[position]
                break
        launches += 1
    return launches


class Knowledge(StrEnum):
    """The one truth an :class:`InformedPacer` is told; the value is its simulator mode."""

    TALK_ENDS = "talk-known"
    CALLS_IN_FLIGHT = "calls-known"


@dataclass(frozen=True)
class InformedPacer:
    settings: PacingSettings
    foresight: Foresight
    knows: Knowledge

    def decide(self, snapshot: PacingInput, stats: PacingStats) -> PacingDecision:
        alpha = call_abandon_bound(snapshot.now, self.settings, stats)
        free_qs, demand_qs = forecast(snapshot, stats)
        if self.knows is Knowledge.TALK_ENDS:
            horizon = stats.mean_seconds_to_connect + ABANDON_GRACE_SECONDS
            free_qs = known_free_probabilities(
                snapshot, stats, self.foresight.talk_ends(), horizon
            )
        else:
            demand_qs = [1.0] * len(self.foresight.connect_times())
        wanted = launches_within_bound(snapshot, self.settings, stats, free_qs, demand_qs, alpha)
        launch = apply_caps(wanted, snapshot, self.settings)
        return PacingDecision(
            launch, dial_level(snapshot, launch), f"{self.knows}: alpha={alpha:.4f}"
        )


def known_free_probabilities(
    snapshot: PacingInput, stats: PacingStats, talk_ends: Sequence[float], horizon: float
) -> list[float]:
    """:func:`pacing.free_probabilities` with each talk's end known: an agent on a call is
    free by the horizon if its wrap-up (still drawn from the sample's quantiles) fits after
    it."""
    until = snapshot.now + horizon
    wraps = stats.wrap_quantiles() or [0.0]
    return [
        *([1.0] * snapshot.agents_ready),
        *(sum(end + wrap <= until for wrap in wraps) / len(wraps) for end in talk_ends),
        *stats.wrap_end_probabilities(snapshot.wrap_elapsed, horizon),
    ]
