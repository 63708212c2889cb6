"""How many outbound calls to launch now: the dialer's pure pacing decision.

The campaign runner and the day simulator (``dialer/simulate.py``) both call :func:`decide`
with a :class:`PacingInput` snapshot, a :class:`PacingSettings` and a :class:`PacingStats`
history that they feed from call outcomes with the clock passed in. Nothing here does I/O or
reads a clock, so one algorithm runs in both worlds and is testable with plain values.

Interface for the live runner
-----------------------------
* Each tick (about once a second, and whenever an agent becomes ready) build a
  :class:`PacingInput` from the live model: agents logged in / ready, elapsed talk seconds of
  agents on a call, elapsed wrap-up seconds of agents in after-call work, calls ringing
  (originated, not answered yet), answered calls AMD is still listening to, answered calls
  waiting for an agent, trunk lines in use and launches in the last second.
* Feed :class:`PacingStats` as outcomes arrive: ``record_attempt`` when an attempt's fate is
  known (it needed an agent, or it ended without: no answer, busy, machine hung up), with
  when it was answered (the line's answer, seconds before AMD's verdict),
  ``record_talk`` / ``record_wrap`` when an agent's call or wrap-up ends, ``record_live_answer``
  for every live (human) answer with ``abandoned`` = no agent within 2 s of the greeting;
  with several workers on one campaign, for the other workers' live answers too
  (:class:`AnswersFromStore`): the abandon rate the regulators judge is the campaign's.
* ``decide(input, settings, stats)`` returns a :class:`PacingDecision`: launch count, the
  dial level it amounts to, and a reason string for the log.

Modes
-----
* ``preview``: the agent asks for each call (a key on the nailed-up leg while ready): pacing
  launches the calls asked for (``calls_asked``) within the caps, never one by itself.
* ``progressive``: one call in flight per ready agent: ``ready - (in flight + waiting)``.
* ``predictive`` (model-based, with abandon feedback):

  1. Horizon ``H`` = mean seconds from launch to "needs an agent" (ring + answering-machine
     detection) plus the 2 s grace of the abandon rule: a call launched now needs its agent
     within about ``H``.
  2. Agents free by ``H``: the ``ready`` ones for sure; an agent on a call with ``t`` s of
     talk frees with probability ``P(T + W <= t + H | T > t)`` from the empirical talk-time
     sample, averaged over quantiles of the wrap-up sample ``W``; an agent in wrap-up with
     ``u`` s with ``P(W <= u + H | W > u)``. The free count ``F`` is a sum of Bernoulli
     variables (mean ``f``, variance ``sum q(1-q)``). While the talk sample is still filling,
     the calls running now join the risk set as right-censored observations: otherwise the
     first minutes' sample (only short calls have ended) makes every long call look about
     to end and the dialer overshoots at the start of a campaign.
  3. Demand ahead of a new call (first come, first served): calls waiting now, plus the calls
     in flight that will connect before it: each answered call AMD is still listening to with
     the share of answers that needed an agent, each ringing one with its probability of being
     answered in time to connect within the mean time-to-connect given how long it has rung
     (Bayes on the samples of time-to-answer and of unanswered attempt durations), plus the
     other new ones, each with the observed connect probability ``p``. Hearing of the answer
     at the answer, not at AMD's verdict (1-2.5 s later), is worth +0.006 of the occupancy
     limit with 25 agents and +0.014 with 5 at the same abandon rate (the pacing bench's
     target cells): a ringing call's odds fall as soon as the answers it could have been have
     come, and a call in AMD is counted as nearly a connect while a new call's fate is open.
  4. The ``n``-th new call is abandoned if it connects and finds the agents already taken:
     ``P(demand before it >= F)``: summed exactly over the Bernoulli variables while at most
     ``EXACT_RISK_MAX_AGENTS`` agents may be free (small teams, where the normal approximation
     halves rare-event risks), else the normal approximation with continuity correction.
     Launch the largest ``n`` whose last call's abandon probability stays below ``alpha``.
     Bounding every call's own abandon probability bounds the average, i.e. the rate, as far
     as the model is right (it is not about timing: an in-flight call connecting now is
     matched against an agent freeing at ``H``), which is why step 5 exists.
  5. Feedback: ``alpha = target * gain``; the gain is ``exp(k * (setpoint - worst))`` (clamped)
     where ``worst`` is the highest abandon-rate / target over the stats' windows (by default
     1 h, 24 h and 30 days; the runner passes the campaign's regulation windows plus 1 h),
     each smoothed with a prior of 50 answers at the target rate: a thin window (the first
     hour of a campaign) holds the dialer back instead of swinging it.
     Windows running hot lower ``alpha`` quickly; windows well under target let the model dial
     harder, but never past ``MAX_CALL_ABANDON_PROBABILITY`` (0.5): a call more likely to be
     abandoned than to reach an agent is not launched. Without that ceiling a target above
     about 25 % let ``alpha`` pass 1, which bounds nothing: the dialer launched at the CPS cap
     (400 lines for 5 agents in the simulator), then the feedback starved the agents.

  With fewer than ``min_agents_predictive`` agents logged in, or fewer than
  ``min_history_predictive`` finished attempts, it falls back to progressive. Finished talks
  are not waited for: until some exist the model counts no agent on a call as about to be
  free (it only dials for ready agents), which is safe, while waiting for 30 talks kept a
  five-agent team progressive for its first 20 minutes.

Every mode then goes through :func:`apply_caps`: never above the trunk's free lines
(``line_cap - lines_in_use``), never above the calls-per-second budget
(``floor(cps_cap) - launches_last_second``; below 1 cps, one launch once ``1 / cps_cap`` s
have passed since the last), and 0 when no agent is logged in or none is ready or
about to be (on a call or in wrap-up).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

ABANDON_GRACE_SECONDS = 2.0
HOUR = 3600.0
# 1 h reacts fast; 24 h is Ofcom's window, 30 days (720 h) the FTC's.
DEFAULT_WINDOW_HOURS = (1.0, 24.0, 720.0)
_BUCKETS_PER_WINDOW = 60
# Pseudo-answers at the target rate added to every abandon window before feedback reads it.
FEEDBACK_PRIOR_ANSWERS = 50.0
# The feedback may loosen the per-call abandon bound up to here and no further.
MAX_CALL_ABANDON_PROBABILITY = 0.5
# Up to this many agents free or about to be, the busy risk is summed exactly (cheap: the
# distributions are that long); above it the normal approximation is accurate and faster.
EXACT_RISK_MAX_AGENTS = 12


class PacingMode(StrEnum):
    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    PREDICTIVE = "predictive"


@dataclass(frozen=True)
class PacingSettings:
    """The pacing knobs; the runner builds this from the campaign's settings."""

    mode: PacingMode = PacingMode.PREDICTIVE
    abandon_target: float = 0.03
    line_cap: int = 30
    cps_cap: float = 10.0
    ring_timeout: float = 20.0
    min_agents_predictive: int = 3
    min_history_predictive: int = 30
    # Where the feedback aims, as a share of the target: headroom for a bad hour.
    feedback_setpoint: float = 0.85
    feedback_strength: float = 5.0
    feedback_gain_range: tuple[float, float] = (0.1, 4.0)

    def __post_init__(self) -> None:
        if not 0.0 < self.abandon_target < 1.0:
            raise ValueError(f"abandon_target must be in (0, 1), got {self.abandon_target}")
        if self.line_cap < 1:
            raise ValueError(f"line_cap must be >= 1, got {self.line_cap}")
        if self.cps_cap <= 0:
            raise ValueError(f"cps_cap must be > 0, got {self.cps_cap}")
        if self.ring_timeout < 15.0:
            raise ValueError(f"ring_timeout must be >= 15 s (regulation), got {self.ring_timeout}")
        if self.min_agents_predictive < 1 or self.min_history_predictive < 0:
            raise ValueError("min_agents_predictive must be >= 1 and min_history_predictive >= 0")
        low, high = self.feedback_gain_range
        if not 0.0 < low <= 1.0 <= high:
            raise ValueError(f"feedback_gain_range needs 0 < low <= 1 <= high: {low}, {high}")


@dataclass(frozen=True)
class PacingInput:
    """What the dialer sees at one instant (``now`` in seconds on the caller's clock)."""

    now: float
    agents_logged_in: int
    agents_ready: int
    talk_elapsed: tuple[float, ...] = ()
    wrap_elapsed: tuple[float, ...] = ()
    in_flight_elapsed: tuple[float, ...] = ()
    # Answered calls whose AMD verdict is still out: each will need an agent unless a machine.
    calls_screening: int = 0
    calls_waiting: int = 0
    lines_in_use: int = 0
    launches_last_second: int = 0
    # Only read when cps_cap < 1 (one launch per 1/cps_cap seconds).
    seconds_since_last_launch: float = math.inf
    # Preview: calls agents asked for that are not launched yet.
    calls_asked: int = 0

    @property
    def calls_in_flight(self) -> int:
        return len(self.in_flight_elapsed) + self.calls_screening

    @property
    def agents_available_soon(self) -> int:
        """Ready agents plus those who will be ready after their call or wrap-up."""
        return self.agents_ready + len(self.talk_elapsed) + len(self.wrap_elapsed)


@dataclass(frozen=True)
class PacingDecision:
    launch: int
    dial_level: float
    reason: str


class _Sample:
    """The last ``size`` observations of a duration, kept sorted for conditional probabilities."""

    def __init__(self, size: int) -> None:
        self._arrival: deque[float] = deque()
        self._sorted: list[float] = []
        self._size = size
        self._total = 0.0

    def add(self, value: float) -> None:
        if len(self._arrival) == self._size:
            oldest = self._arrival.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]
            self._total -= oldest
        self._arrival.append(value)
        bisect.insort(self._sorted, value)
        self._total += value

    def __len__(self) -> int:
        return len(self._sorted)

    @property
    def mean(self) -> float:
        return self._total / len(self._sorted) if self._sorted else 0.0

    def survivals(self, values: Sequence[float]) -> list[float]:
        """Share of the sample above each value (1.0 while the sample is empty)."""
        if not self._sorted:
            return [1.0 for _ in values]
        size = len(self._sorted)
        return [1.0 - bisect.bisect_right(self._sorted, v) / size for v in values]

    def quantiles(self, count: int) -> list[float]:
        """``count`` evenly spaced quantiles (mid-points of equal-probability slices)."""
        if not self._sorted:
            return []
        size = len(self._sorted)
        return [self._sorted[int((i + 0.5) * size / count)] for i in range(count)]

    @property
    def full(self) -> bool:
        return len(self._sorted) == self._size

    def end_probabilities(
        self, elapsed: Sequence[float], horizons: Sequence[float], censored: Sequence[float] = ()
    ) -> list[float]:
        """For each elapsed time ``e``: ``P(X <= e + h | X > e)`` from the sample, averaged
        over ``horizons``.

        ``censored`` (sorted) are durations still running: while the sample is not full it
        holds every finished one, and the short ones finish first, so the running ones must
        join the risk set (Nelson-Aalen) or the end of a long call is predicted far too soon.
        Past the longest value seen, the remaining time is guessed as long as the elapsed time.
        One call serves every agent: this runs for each of them on every tick.
        """
        if not self._sorted or not horizons:
            return [0.0 for _ in elapsed]
        ahead = [h for h in horizons if h > 0.0]
        size = len(self._sorted)
        bisect_right = bisect.bisect_right
        probabilities = []
        for e in elapsed:
            ended_before = bisect_right(self._sorted, e)
            if ended_before == size:
                ended = sum(h / (h + max(e, 1.0)) for h in ahead)
                at_risk = 1
            else:
                ends = [bisect_right(self._sorted, e + h) for h in ahead]
                ended = sum(ends) - ended_before * len(ahead)
                at_risk = size - ended_before + len(censored) - bisect_right(censored, e)
            probabilities.append(ended / (at_risk * len(horizons)))
        return probabilities


class _WindowCounter:
    """Live answers and abandons in a sliding window, kept as 60 time buckets and their sums
    (read on every tick)."""

    def __init__(self, length: float) -> None:
        self._length = length
        self._width = length / _BUCKETS_PER_WINDOW
        self._buckets: deque[list[float]] = deque()  # [bucket_start, answers, abandons]
        self._answers = 0
        self._abandons = 0

    def add(self, now: float, abandoned: bool) -> None:
        start = math.floor(now / self._width) * self._width
        if not self._buckets or self._buckets[-1][0] != start:
            self._buckets.append([start, 0, 0])
        bucket = self._buckets[-1]
        bucket[1] += 1
        bucket[2] += int(abandoned)
        self._answers += 1
        self._abandons += int(abandoned)
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - self._length - self._width:
            _, answers, abandons = self._buckets.popleft()
            self._answers -= int(answers)
            self._abandons -= int(abandons)

    def totals(self, now: float) -> tuple[int, int]:
        """(live answers, abandons) of the buckets that overlap ``(now - length, now]``."""
        self._expire(now)
        return self._answers, self._abandons


@dataclass
class PacingStats:
    """Outcome history fed by the runner (or simulator); every time is passed in."""

    sample_size: int = 1000
    window_hours: tuple[float, ...] = DEFAULT_WINDOW_HOURS
    _talk: _Sample = field(init=False)
    _wrap: _Sample = field(init=False)
    _to_connect: _Sample = field(init=False)
    _to_answer: _Sample = field(init=False)
    _unanswered: _Sample = field(init=False)
    _attempts: deque[tuple[bool, bool]] = field(init=False)  # (answered, connected)
    _answers: int = field(init=False, default=0)
    _connects: int = field(init=False, default=0)
    _windows: dict[float, _WindowCounter] = field(init=False)

    def __post_init__(self) -> None:
        self._talk = _Sample(self.sample_size)
        self._wrap = _Sample(self.sample_size)
        self._to_connect = _Sample(self.sample_size)
        self._to_answer = _Sample(self.sample_size)
        self._unanswered = _Sample(self.sample_size)
        self._attempts = deque()
        if not self.window_hours or min(self.window_hours) <= 0:
            raise ValueError(f"window_hours must be positive, got {self.window_hours}")
        self._windows = {hours: _WindowCounter(hours * HOUR) for hours in self.window_hours}

    def record_attempt(
        self, *, connected: bool, seconds: float | None = None, answered_after: float | None = None
    ) -> None:
        """An attempt's fate is known ``seconds`` after launch: it needs an agent, or it ended.

        Record a connect when the call is answered and classified human (not at its hang-up):
        the in-flight model learns from these durations how long a call takes to connect.
        ``answered_after``: seconds from launch to the answer, before AMD's verdict (None: never
        answered); a connect seen without its answer was answered when it connected.
        """
        if connected and answered_after is None:
            answered_after = seconds
        answered = answered_after is not None
        if len(self._attempts) == self.sample_size:
            old_answered, old_connected = self._attempts.popleft()
            self._answers -= int(old_answered)
            self._connects -= int(old_connected)
        self._attempts.append((answered, connected))
        self._answers += int(answered)
        self._connects += int(connected)
        if connected and seconds is not None:
            self._to_connect.add(seconds)
        if answered_after is not None:
            self._to_answer.add(answered_after)
        elif seconds is not None:
            self._unanswered.add(seconds)

    def record_talk(self, seconds: float) -> None:
        self._talk.add(seconds)

    def record_wrap(self, seconds: float) -> None:
        self._wrap.add(seconds)

    def record_live_answer(self, now: float, *, abandoned: bool) -> None:
        for window in self._windows.values():
            window.add(now, abandoned)

    @property
    def attempts(self) -> int:
        """Finished attempts in the history: what the model's ``p`` rests on."""
        return len(self._attempts)

    @property
    def connect_rate(self) -> float:
        """Share of recent attempts that needed an agent (live answers and missed machines)."""
        return self._connects / len(self._attempts) if self._attempts else 0.0

    @property
    def mean_talk(self) -> float:
        return self._talk.mean

    @property
    def mean_wrap(self) -> float:
        return self._wrap.mean

    @property
    def mean_seconds_to_connect(self) -> float:
        return self._to_connect.mean

    @property
    def answer_rate(self) -> float:
        """Share of recent attempts answered (people and machines)."""
        return self._answers / len(self._attempts) if self._attempts else 0.0

    @property
    def connects_per_answer(self) -> float:
        """Share of answers that needed an agent: what an answered call in AMD will need."""
        return self._connects / self._answers if self._answers else 0.0

    def in_flight_connect_probabilities(
        self, elapsed: Sequence[float], within: float
    ) -> list[float]:
        """Per call ringing: ``P(connects within ``within`` s | unanswered after elapsed s)``.

        Bayes on both duration samples: answered calls leave the ringing set when they answer
        (a few seconds) while unanswered ones ring to the timeout, so an old ringing call is
        much less likely to connect than a new one. A call answered in ``within`` less the
        mean time AMD takes still connects in time.
        """
        answers = self.answer_rate
        screening = max(0.0, self.mean_seconds_to_connect - self._to_answer.mean)
        survives = self._to_answer.survivals(elapsed)
        survives_within = self._to_answer.survivals([e + within - screening for e in elapsed])
        rings_on = self._unanswered.survivals(elapsed)
        per_answer = self.connects_per_answer
        probabilities = []
        for answers_later, still_later, unanswered in zip(
            survives, survives_within, rings_on, strict=True
        ):
            total = answers * answers_later + (1.0 - answers) * unanswered
            answer_part = answers * max(0.0, answers_later - still_later)
            probabilities.append(per_answer * answer_part / total if total > 0.0 else 0.0)
        return probabilities

    def talk_end_probabilities(
        self, elapsed: Sequence[float], horizons: Sequence[float]
    ) -> list[float]:
        """``P(talk ends within h | elapsed)`` per live call, averaged over ``horizons``; the
        live calls themselves are the censored durations."""
        censored = sorted(elapsed) if not self._talk.full else ()
        return self._talk.end_probabilities(elapsed, horizons, censored)

    def wrap_quantiles(self, count: int = 5) -> list[float]:
        return self._wrap.quantiles(count)

    def wrap_end_probabilities(self, elapsed: Sequence[float], horizon: float) -> list[float]:
        return self._wrap.end_probabilities(elapsed, (horizon,))

    def window_totals(self, now: float) -> dict[float, tuple[int, int]]:
        """(live answers, abandons) per window, keyed by its length in hours."""
        return {hours: window.totals(now) for hours, window in self._windows.items()}


@dataclass(frozen=True, slots=True)
class LiveAnswer:
    """One live-answered call of a campaign as the store has it: when it ended, by which
    worker, and whether it was abandoned."""

    attempt_id: str
    worker: str
    ended: float
    abandoned: bool


class AnswersFromStore:
    """Feeds a worker's abandon windows the live answers it did not see itself, each once: the
    campaign's history when the worker starts following it (every worker's, before a restart
    too) and from then on the other workers' answers. The regulators judge the campaign, so
    every worker's feedback must count every worker's abandons; its own it records as they
    happen, the rest is read from the store.

    Each read starts ``overlap`` seconds before the newest answer counted (``since``) and skips
    the ones counted already: a result committed a moment after a later one (another worker's
    transaction still open while this worker read) is then still counted, and only once.
    """

    def __init__(self, stats: PacingStats, start: float, overlap: float = 30.0) -> None:
        self._stats = stats
        self._overlap = overlap
        self._newest = start
        self._counted: dict[str, float] = {}  # attempt id -> ended, within the overlap

    @property
    def since(self) -> float:
        """Where the next read of the store starts."""
        return self._newest - self._overlap

    def take(self, answers: Sequence[LiveAnswer]) -> int:
        """Record the answers not counted yet into the windows; returns how many were new."""
        new = 0
        for answer in answers:
            if answer.attempt_id in self._counted:
                continue
            self._counted[answer.attempt_id] = answer.ended
            self._newest = max(self._newest, answer.ended)
            self._stats.record_live_answer(answer.ended, abandoned=answer.abandoned)
            new += 1
        since = self.since
        self._counted = {key: ended for key, ended in self._counted.items() if ended >= since}
        return new


def apply_caps(wanted: int, snapshot: PacingInput, settings: PacingSettings) -> int:
    """Clamp a launch count to the trunk's free lines, the CPS budget and agent presence."""
    if snapshot.agents_logged_in <= 0 or snapshot.agents_available_soon <= 0:
        return 0
    free_lines = settings.line_cap - snapshot.lines_in_use
    return max(0, min(wanted, free_lines, cps_budget(snapshot, settings)))


def cps_budget(snapshot: PacingInput, settings: PacingSettings) -> int:
    """Launches the trunk's calls-per-second cap still allows now."""
    if settings.cps_cap >= 1.0:
        return math.floor(settings.cps_cap) - snapshot.launches_last_second
    spaced = snapshot.seconds_since_last_launch >= 1.0 / settings.cps_cap
    return 1 if spaced and snapshot.launches_last_second == 0 else 0


def progressive_launches(snapshot: PacingInput) -> int:
    return snapshot.agents_ready - snapshot.calls_in_flight - snapshot.calls_waiting


def _normal_upper_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _add_bernoulli(pmf: list[float], q: float) -> list[float]:
    """Distribution of a count plus one Bernoulli(q); the last cell holds "this many or more"."""
    moved = [0.0, *(value * q for value in pmf[:-1])]
    stayed = [value * (1.0 - q) for value in pmf]
    stayed[-1] += pmf[-1] * q
    return [a + b for a, b in zip(stayed, moved, strict=True)]


class _ExactBusy:
    """``P(demand >= free agents)`` summed exactly over Bernoulli variables, for small teams.

    The normal approximation halves that risk when few calls each connect rarely (one free
    agent and calls in flight with q = 0.05: 2 % instead of 5 %), which let five-agent teams run
    over 3 %. Demand is only needed up to the number of agents that may be free, so the
    distributions stay ``agents + 1`` long.
    """

    def __init__(self, free_qs: Sequence[float], demand_qs: Sequence[float], waiting: int) -> None:
        size = len(free_qs) + 1
        self._free = [1.0] + [0.0] * (size - 1)
        for q in free_qs:
            self._free = _add_bernoulli(self._free, q)
        self._demand = [0.0] * size
        self._demand[min(waiting, size - 1)] = 1.0
        for q in demand_qs:
            self._demand = _add_bernoulli(self._demand, q)

    def busy(self) -> float:
        at_least = 1.0
        total = self._free[0]
        for free, demand in zip(self._free[1:], self._demand, strict=False):
            at_least -= demand
            total += free * at_least
        return total

    def add_call(self, p: float) -> None:
        self._demand = _add_bernoulli(self._demand, p)


class _NormalBusy:
    """The same risk by the normal approximation with continuity correction: large teams."""

    def __init__(self, free_qs: Sequence[float], demand_qs: Sequence[float], waiting: int) -> None:
        self._mean = waiting + sum(demand_qs) - sum(free_qs)
        self._variance = sum(q * (1.0 - q) for q in (*free_qs, *demand_qs))

    def busy(self) -> float:
        if self._variance < 1e-18:
            return 1.0 if self._mean > -0.5 else 0.0
        return _normal_upper_tail((-0.5 - self._mean) / math.sqrt(self._variance))

    def add_call(self, p: float) -> None:
        self._mean += p
        self._variance += p * (1.0 - p)


BusyRisk = _ExactBusy | _NormalBusy


def busy_risk(free_qs: Sequence[float], demand_qs: Sequence[float], waiting: int) -> BusyRisk:
    """``P(demand >= free agents)`` for Bernoulli free agents and demand on top of ``waiting``
    calls, exact for small teams; ``add_call`` puts one more call in the demand."""
    model = _ExactBusy if len(free_qs) <= EXACT_RISK_MAX_AGENTS else _NormalBusy
    return model(free_qs, demand_qs, waiting)


def free_probabilities(
    snapshot: PacingInput, stats: PacingStats, horizon: float
) -> list[float]:
    """Per agent logged in and not dialing: the probability it is free ``horizon`` s from now.

    An agent on a call is free by the horizon if talk left + wrap-up fit in it: averaged over
    wrap-up quantiles (the convolution, coarsely) rather than subtracting the mean wrap-up.
    """
    talk_horizons = [horizon - wrap for wrap in stats.wrap_quantiles()] or [horizon]
    return [
        *([1.0] * snapshot.agents_ready),
        *stats.talk_end_probabilities(snapshot.talk_elapsed, talk_horizons),
        *stats.wrap_end_probabilities(snapshot.wrap_elapsed, horizon),
    ]


def feedback_gain(now: float, settings: PacingSettings, stats: PacingStats) -> float:
    """Multiplier of the per-call abandon bound from the hottest regulation window."""
    target = settings.abandon_target
    prior_abandons = FEEDBACK_PRIOR_ANSWERS * target
    worst = 0.0
    for answers, abandons in stats.window_totals(now).values():
        rate = (abandons + prior_abandons) / (answers + FEEDBACK_PRIOR_ANSWERS)
        worst = max(worst, rate / target)
    low, high = settings.feedback_gain_range
    gain = math.exp(settings.feedback_strength * (settings.feedback_setpoint - worst))
    return min(high, max(low, gain))


def call_abandon_bound(now: float, settings: PacingSettings, stats: PacingStats) -> float:
    """``alpha``: the abandon probability a new call may carry, the target scaled by the
    feedback."""
    gain = feedback_gain(now, settings, stats)
    return min(settings.abandon_target * gain, MAX_CALL_ABANDON_PROBABILITY)


def forecast(snapshot: PacingInput, stats: PacingStats) -> tuple[list[float], list[float]]:
    """The model's view of a call launched now: per agent, the probability it is free by the
    call's horizon (mean time to connect plus the grace), and per call in flight, the
    probability it connects first and takes one."""
    connect_seconds = stats.mean_seconds_to_connect
    free_qs = free_probabilities(snapshot, stats, connect_seconds + ABANDON_GRACE_SECONDS)
    ringing = stats.in_flight_connect_probabilities(snapshot.in_flight_elapsed, connect_seconds)
    screening = [stats.connects_per_answer] * snapshot.calls_screening
    return free_qs, [*ringing, *screening]


def predictive_launches(
    snapshot: PacingInput, settings: PacingSettings, stats: PacingStats, alpha: float
) -> int:
    """Largest ``n`` whose ``n``-th call connects to a busy floor with probability <= alpha."""
    free_qs, demand_qs = forecast(snapshot, stats)
    return launches_within_bound(snapshot, settings, stats, free_qs, demand_qs, alpha)


def launches_within_bound(
    snapshot: PacingInput,
    settings: PacingSettings,
    stats: PacingStats,
    free_qs: Sequence[float],
    demand_qs: Sequence[float],
    alpha: float,
) -> int:
    """Largest ``n`` whose ``n``-th new call (each connecting with the observed ``p``) finds
    the agents free by its horizon (``free_qs``) taken by the calls waiting and the demand
    ahead of it (``demand_qs``, then the new calls before it) with probability <= alpha."""
    p = stats.connect_rate
    if p <= 0.0:
        return progressive_launches(snapshot)
    limit = min(settings.line_cap - snapshot.lines_in_use, cps_budget(snapshot, settings))
    risk = busy_risk(free_qs, demand_qs, snapshot.calls_waiting)
    launches = 0
    while launches < limit and risk.busy() <= alpha:
        risk.add_call(p)
        launches += 1
    return launches


def decide(
    snapshot: PacingInput, settings: PacingSettings, stats: PacingStats
) -> PacingDecision:
    """How many calls to launch now, the dial level that is, and why (for the log)."""
    mode = settings.mode
    if mode is PacingMode.PREVIEW:
        launch = apply_caps(snapshot.calls_asked, snapshot, settings)
        return PacingDecision(launch, dial_level(snapshot, launch), "preview: asked by agents")
    if snapshot.agents_logged_in < settings.min_agents_predictive:
        fallback = "too few agents"
    elif stats.attempts < settings.min_history_predictive:
        fallback = "too little history"
    else:
        fallback = ""
    if mode is PacingMode.PROGRESSIVE or fallback:
        wanted = progressive_launches(snapshot)
        reason = "progressive" if not fallback else f"progressive fallback: {fallback}"
    else:
        alpha = call_abandon_bound(snapshot.now, settings, stats)
        wanted = predictive_launches(snapshot, settings, stats, alpha)
        reason = f"predictive: p={stats.connect_rate:.3f} alpha={alpha:.4f}"
    launch = apply_caps(wanted, snapshot, settings)
    return PacingDecision(launch, dial_level(snapshot, launch), reason)


def dial_level(snapshot: PacingInput, launch: int) -> float:
    """Calls in flight after this launch per agent that is ready or about to be."""
    available = snapshot.agents_available_soon
    return (snapshot.calls_in_flight + launch) / available if available else 0.0
