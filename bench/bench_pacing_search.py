"""One agent's search for a call, solved exactly: what no causal pacer can beat alone.

Why: predictive pacing with 5 agents stays on one curve of occupancy against abandon rate
(fifteen variants tried), below the issue's target. Whether any pacer that sees only what a
live dialer sees can leave that curve is a dynamic program over every agent and every call in
flight: too large to solve for a team. For one agent who waits for a call (the others busy for
longer than a call rings) it is small, and that is where a small team spends its idle time.

The problem, in the simulator's world with no machines (``SimulationConfig``: answer rate,
ring times, busy lines, ring timeout, AMD seconds), in 1 s steps: the state is the ages of the
calls in flight (at most ``max_in_flight``); each step the dialer may launch calls; each call
answers, ends unanswered (busy, rung out) or rings on, independently, by its age. The first
answer reaches the agent ``amd_seconds`` later and ends the search. Every other answer of the
calls launched so far finds the agent talking: an abandon. The dynamic program minimises
``seconds to connect + lam * abandons``; sweeping ``lam`` traces the best curve there is.
``threshold`` is the simple rule: launch while the calls in flight, counted by their chance to
be answered still (given their age), and the new one add up to at most ``theta``.

Printed: the optimum and the rule, each as seconds from ready to connect, abandons per live
answer, and the share of the occupancy limit an agent with no wrap-up reaches
(``aht / (aht + wait)``), beside predictive in the simulator, on one agent and on five (no
wrap-up, ``DAYS`` days pooled).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

from bench.common import Table
from controller.dialer.simulate import (
    BUSY_AFTER_S,
    RING_SIGMA,
    SimulationConfig,
    SimulationResult,
    simulate,
)

# the simulator's world the table is about: no machines, no wrap-up (the rest its defaults)
WORLD = SimulationConfig(machine_share=0.0, wrap=0.0)
MAX_IN_FLIGHT = 3  # 4 gives the same optimum at 3 % (48.7 s, 3.07 %) and one curve above
LAMS = (100.0, 200.0, 300.0, 500.0)
THETAS = (0.25, 0.30, 0.35)
PREDICTIVE_TARGETS = (0.03, 0.045, 0.06)
SEED = 7
DAYS = 6
_CONVERGED = 1e-9
_MAX_SWEEPS = 5000

State = tuple[int, ...]  # the ages (whole seconds) of the calls in flight, sorted
Policy = Mapping[State, int]  # calls to launch in a state


@dataclass(frozen=True)
class CallModel:
    """A launched call, by the second of its life: ``answer[a]`` the chance it is answered by
    a person (who will need the agent) in second ``a`` given it rang until ``a``, ``rings_on[a]``
    that it still rings at ``a + 1``, ``answer_ahead[a]`` that it will be answered at all given
    it rings at ``a``."""

    answer: Sequence[float]
    rings_on: Sequence[float]
    answer_ahead: Sequence[float]

    @classmethod
    def of(cls, config: SimulationConfig) -> CallModel:
        if config.machine_share:
            raise ValueError("the search bound models a world with no machines")
        seconds = math.ceil(config.ring_timeout)
        mu = math.log(config.ring_mean) - RING_SIGMA * RING_SIGMA / 2

        def rung(t: float) -> float:  # share of answered calls answered by t
            if t >= config.ring_timeout - 0.5:
                return 1.0
            return 0.0 if t <= 0 else 0.5 * (1 + math.erf((math.log(t) - mu) / RING_SIGMA / 2**0.5))

        low, high = BUSY_AFTER_S
        human = config.answer_rate * config.amd_accuracy  # AMD hangs up on the rest
        answered = [human * (rung(a + 1) - rung(a)) for a in range(seconds)]
        ended = [
            config.answer_rate * (1 - config.amd_accuracy) * (rung(a + 1) - rung(a))
            + (1 - config.answer_rate) * config.busy_share
            * max(0.0, min(a + 1, high) - max(a, low)) / (high - low)
            for a in range(seconds)
        ]
        ended[-1] += (1 - config.answer_rate) * (1 - config.busy_share)  # rings out
        alive = [1.0]  # still ringing at the start of each second
        for answer, end in zip(answered, ended, strict=True):
            alive.append(alive[-1] - answer - end)
        return cls(
            answer=[x / alive[a] for a, x in enumerate(answered)],
            rings_on=[max(0.0, alive[a + 1]) / alive[a] for a in range(seconds)],
            answer_ahead=[*(sum(answered[a:]) / alive[a] for a in range(seconds)), 0.0],
        )


@dataclass(frozen=True)
class _Step:
    """One second from a state with the new calls launched: the chance the search ends in it
    (a first answer), the abandons it then leaves expected (times that chance), and where it
    goes on otherwise."""

    ends: float
    abandons: float
    next_states: tuple[tuple[State, float], ...]


class SearchProblem:
    def __init__(self, model: CallModel, max_in_flight: int, amd_seconds: float) -> None:
        self.model = model
        self.max_in_flight = max_in_flight
        # a first answer comes mid-second on average and reaches the agent after AMD
        self.connect_cost = 0.5 + amd_seconds
        ages = range(len(model.answer))
        self.states: list[State] = [
            state for n in range(max_in_flight + 1)
            for state in itertools.combinations_with_replacement(ages, n)
        ]
        self._steps = {state: self._step(state) for state in self.states}

    def launches(self, state: State) -> range:
        """What may be launched in ``state``: an agent waiting with no call in flight gets
        one at least (else the search never ends)."""
        return range(0 if state else 1, self.max_in_flight - len(state) + 1)

    def step(self, state: State, launch: int) -> _Step:
        return self._steps[tuple(sorted((0,) * launch + state))]

    def _step(self, state: State) -> _Step:
        model = self.model
        silent = [1 - model.answer[a] for a in state]
        none = math.prod(silent)
        answers = sum(model.answer[a] for a in state)
        # calls still ringing when the first answer comes: each may be answered later
        later = sum(
            model.rings_on[a] * model.answer_ahead[a + 1]
            * (1 - math.prod(silent[:i] + silent[i + 1:]))
            for i, a in enumerate(state)
        )
        next_states: dict[State, float] = {}
        for keeps in itertools.product((False, True), repeat=len(state)):
            chance = none
            for keep, age, quiet in zip(keeps, state, silent, strict=True):
                on = model.rings_on[age] / quiet
                chance *= on if keep else 1 - on
            if chance > 0:
                after = tuple(age + 1 for keep, age in zip(keeps, state, strict=True) if keep)
                next_states[after] = next_states.get(after, 0.0) + chance
        return _Step(1 - none, answers - (1 - none) + later, tuple(next_states.items()))


@dataclass(frozen=True)
class SearchOutcome:
    seconds_to_connect: float
    abandons_per_connect: float

    @property
    def abandon_rate(self) -> float:
        """Abandons over live answers (the connect and the abandoned ones)."""
        return self.abandons_per_connect / (1 + self.abandons_per_connect)

    def occupancy_share(self, aht: float) -> float:
        return aht / (aht + self.seconds_to_connect)


def optimal_policy(problem: SearchProblem, lam: float) -> dict[State, int]:
    """The launches minimising seconds to connect + ``lam`` x abandons (value iteration)."""
    value = dict.fromkeys(problem.states, 0.0)

    def cost(state: State, launch: int) -> float:
        step = problem.step(state, launch)
        return (step.ends * problem.connect_cost + lam * step.abandons
                + sum(chance * (1 + value[after]) for after, chance in step.next_states))

    for _ in range(_MAX_SWEEPS):
        change = 0.0
        for state in problem.states:
            least = min(cost(state, launch) for launch in problem.launches(state))
            change = max(change, abs(least - value[state]))
            value[state] = least
        if change < _CONVERGED:
            break

    def best(state: State) -> int:
        return min(problem.launches(state), key=lambda launch: cost(state, launch))

    return {state: best(state) for state in problem.states}


def threshold_policy(problem: SearchProblem, theta: float) -> dict[State, int]:
    """Launch while the calls in flight and the new ones, each counted by its chance to be
    answered still, add up to at most ``theta`` (one call at least when none is in flight)."""
    ahead = problem.model.answer_ahead
    policy = {}
    for state in problem.states:
        counted = sum(ahead[a] for a in state)
        allowed = [n for n in problem.launches(state) if counted + n * ahead[0] <= theta]
        policy[state] = max(allowed, default=problem.launches(state)[0])
    return policy


def evaluate(problem: SearchProblem, policy: Policy) -> SearchOutcome:
    """Expected seconds to connect and abandons of a search under ``policy``."""
    seconds = dict.fromkeys(problem.states, 0.0)
    abandons = dict.fromkeys(problem.states, 0.0)
    for _ in range(_MAX_SWEEPS):
        change = 0.0
        for state in problem.states:
            step = problem.step(state, policy[state])
            new_seconds = step.ends * problem.connect_cost + sum(
                chance * (1 + seconds[after]) for after, chance in step.next_states)
            new_abandons = step.abandons + sum(
                chance * abandons[after] for after, chance in step.next_states)
            change = max(change, abs(new_seconds - seconds[state]),
                         abs(new_abandons - abandons[state]))
            seconds[state], abandons[state] = new_seconds, new_abandons
        if change < _CONVERGED:
            break
    return SearchOutcome(seconds[()], abandons[()])


def reached(problem: SearchProblem, policy: Policy) -> set[State]:
    """The states (before launching) a search under ``policy`` can be in."""
    seen: set[State] = set()
    todo: list[State] = [()]
    while todo:
        state = todo.pop()
        if state in seen:
            continue
        seen.add(state)
        todo.extend(after for after, _ in problem.step(state, policy[state]).next_states)
    return seen


def same_threshold(problem: SearchProblem, policy: Policy) -> float | None:
    """A ``theta`` (on a 0.005 grid) whose rule launches as ``policy`` does wherever the
    search goes under ``policy``; None if none does."""
    where = reached(problem, policy)
    for step in range(1, 201):
        theta = step * 0.005
        rule = threshold_policy(problem, theta)
        if all(rule[state] == policy[state] for state in where):
            return theta
    return None


def _days(config: SimulationConfig) -> tuple[float, float, float]:
    """Share of the occupancy limit, abandon rate and mean agent wait over ``DAYS`` days."""
    results: list[SimulationResult] = [
        simulate(replace(config, seed=SEED + day)) for day in range(DAYS)]
    answers = sum(r.live_answers for r in results)
    return (sum(r.occupancy / r.occupancy_limit for r in results) / DAYS,
            sum(r.abandons for r in results) / answers if answers else 0.0,
            sum(r.agent_wait_seconds for r in results) / DAYS)


def _search(world: SimulationConfig) -> SearchProblem:
    return SearchProblem(CallModel.of(world), MAX_IN_FLIGHT, world.amd_seconds)


def _search_row(label: str, outcome: SearchOutcome, same_as: str) -> list[object]:
    return [label, round(outcome.seconds_to_connect, 1), round(outcome.abandon_rate * 100, 2),
            round(outcome.occupancy_share(WORLD.aht), 3), same_as]


def _optimum_row(lam: float) -> list[object]:
    problem = _search(WORLD)
    policy = optimal_policy(problem, lam)
    theta = same_threshold(problem, policy)
    return _search_row(f"optimum, lam {lam:.0f}", evaluate(problem, policy),
                       "-" if theta is None else f"threshold {theta:.3f}")


def _threshold_row(theta: float) -> list[object]:
    problem = _search(WORLD)
    return _search_row(f"threshold {theta:.2f}",
                       evaluate(problem, threshold_policy(problem, theta)), "")


def _predictive_row(agents: int, target: float) -> list[object]:
    config = replace(WORLD, agents=agents, abandon_target=target, min_agents_predictive=1)
    share, abandon_rate, wait = _days(config)
    return [f"predictive, {agents} agent(s), target {target * 100:g} %", round(wait, 1),
            round(abandon_rate * 100, 2), round(share, 3), "simulated"]


def run() -> Table:
    with ProcessPoolExecutor(max_workers=2) as pool:
        optimum = [pool.submit(_optimum_row, lam) for lam in LAMS]
        rules = [pool.submit(_threshold_row, theta) for theta in THETAS]
        predictive = [pool.submit(_predictive_row, agents, target)
                      for agents in (1, 5) for target in PREDICTIVE_TARGETS]
        rows = [future.result() for future in (*optimum, *rules, *predictive)]
    return Table(
        "One agent's search for a call: the exact optimum (20 % answers, AHT 180 s, no wrap-up)",
        ["policy", "wait s", "abandon %", "share of limit", "same launches as"],
        rows,
        notes=[
            f"optimum: dynamic program over the ages of up to {MAX_IN_FLIGHT} calls in flight,"
            " 1 s steps; wait = seconds from ready to connect",
            "predictive: the simulator, days pooled; its wait is the mean agent wait",
        ],
    )
