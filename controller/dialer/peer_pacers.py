"""Pacers of other open-source dialers, rebuilt on our inputs to compare against in the simulator.

They are models of the published ideas, not ports of their code, and they run through the same
:func:`controller.dialer.pacing.apply_caps` as ours, so a comparison differs only in the rule:

* :class:`VicidialAdaptive`: VICIdial's ``ADAPT_TAPERED``. A dial level (calls per active
  agent) is re-tuned every 15 s: raised when agents sit ready with no call waiting, lowered when
  answered calls wait for agents; when the day's drop rate exceeds the allowed rate it is cut.
  "Tapered" lets the drop rate run above the target early in the shift, the allowance shrinking
  linearly to the target at the shift's end. Launches fill ``active agents x level`` minus the
  calls already up (ringing, waiting, talking).
* :class:`ErlangFreeAgents`: Issabel's predictor. Agents counted as free = ready agents plus
  agents on a call whose call will likely (probability >= 0.7) end within the ring time, the
  talk time modelled as an Erlang distribution with the observed mean; it then dials
  ``free / answer rate`` calls minus those in flight.

Each holds only its own small state (the VICIdial level) and takes the time from the snapshot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from controller.dialer.pacing import (
    PacingDecision,
    PacingInput,
    PacingSettings,
    PacingStats,
    apply_caps,
    decide,
    dial_level,
    progressive_launches,
)


class Pacer(Protocol):
    """Anything that turns a snapshot and the outcome history into a launch decision."""

    def decide(self, snapshot: PacingInput, stats: PacingStats) -> PacingDecision: ...


@dataclass(frozen=True)
class ModelPacer:
    """Our own modes (preview, progressive, predictive) behind the :class:`Pacer` interface."""

    settings: PacingSettings

    def decide(self, snapshot: PacingInput, stats: PacingStats) -> PacingDecision:
        return decide(snapshot, self.settings, stats)


class VicidialAdaptive:
    ADJUST_EVERY = 15.0
    MAX_LEVEL = 20.0

    def __init__(self, settings: PacingSettings, shift_seconds: float) -> None:
        self._settings = settings
        self._shift_seconds = shift_seconds
        self._shift_start: float | None = None
        self._next_adjust = 0.0
        self.level = 1.0

    def _allowed_drop_rate(self, now: float, start: float) -> float:
        remaining = max(0.0, 1.0 - (now - start) / self._shift_seconds)
        return self._settings.abandon_target * (1.0 + remaining)

    def _adjust(self, snapshot: PacingInput, stats: PacingStats, start: float) -> None:
        active = max(1, snapshot.agents_ready + len(snapshot.talk_elapsed))
        self.level += (snapshot.agents_ready - snapshot.calls_waiting) / active
        totals = stats.window_totals(snapshot.now)
        answers, drops = totals[min(totals, key=lambda hours: abs(hours - 24.0))]  # the day
        allowed = self._allowed_drop_rate(snapshot.now, start)
        if answers and drops / answers > allowed:
            excess = min(1.0, (drops / answers - allowed) / allowed)
            self.level -= 0.5 * self.level * excess
        self.level = min(self.MAX_LEVEL, max(1.0, self.level))

    def decide(self, snapshot: PacingInput, stats: PacingStats) -> PacingDecision:
        if self._shift_start is None:
            self._shift_start = snapshot.now
            self._next_adjust = snapshot.now + self.ADJUST_EVERY
        if snapshot.now >= self._next_adjust:
            self._adjust(snapshot, stats, self._shift_start)
            self._next_adjust = snapshot.now + self.ADJUST_EVERY
        talking = len(snapshot.talk_elapsed)
        active = snapshot.agents_ready + talking
        calls_up = snapshot.calls_in_flight + snapshot.calls_waiting + talking
        wanted = math.floor(active * self.level) - calls_up
        launch = apply_caps(wanted, snapshot, self._settings)
        return PacingDecision(
            launch, dial_level(snapshot, launch), f"vicidial-adaptive: level={self.level:.2f}"
        )


class ErlangFreeAgents:
    ERLANG_SHAPE = 2
    LIKELY = 0.7

    def __init__(self, settings: PacingSettings) -> None:
        self._settings = settings

    def _erlang_cdf(self, x: float, mean: float) -> float:
        if x <= 0.0:
            return 0.0
        rate = self.ERLANG_SHAPE / mean
        term = total = 1.0
        for k in range(1, self.ERLANG_SHAPE):
            term *= rate * x / k
            total += term
        return 1.0 - math.exp(-rate * x) * total

    def _ends_within(self, elapsed: float, horizon: float, mean: float) -> float:
        survived = 1.0 - self._erlang_cdf(elapsed, mean)
        if survived <= 1e-12:
            return 1.0
        ended = self._erlang_cdf(elapsed + horizon, mean) - self._erlang_cdf(elapsed, mean)
        return ended / survived

    def decide(self, snapshot: PacingInput, stats: PacingStats) -> PacingDecision:
        answer_rate = stats.connect_rate
        mean_talk = stats.mean_talk
        if answer_rate <= 0.0 or mean_talk <= 0.0:
            wanted = progressive_launches(snapshot)
            reason = "erlang-free-agents: no history, progressive"
        else:
            ring = self._settings.ring_timeout
            likely = sum(
                1
                for elapsed in snapshot.talk_elapsed
                if self._ends_within(elapsed, ring, mean_talk) >= self.LIKELY
            )
            free = snapshot.agents_ready + likely
            wanted = (
                math.floor(free / answer_rate) - snapshot.calls_in_flight - snapshot.calls_waiting
            )
            reason = f"erlang-free-agents: free={free} answer_rate={answer_rate:.3f}"
        launch = apply_caps(wanted, snapshot, self._settings)
        return PacingDecision(launch, dial_level(snapshot, launch), reason)
