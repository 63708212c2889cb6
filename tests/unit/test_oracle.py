"""The simulator's oracle and informed pacers: launches by what only the world knows, bounded
like every pacer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.dialer.oracle import (
    InformedPacer,
    Knowledge,
    OraclePacer,
    known_free_probabilities,
    oracle_launches,
)
from controller.dialer.pacing import PacingInput, PacingSettings, PacingStats, decide
from controller.dialer.simulate import INFORMED_MODES, SimulationConfig, simulate
from tests.unit.test_pacing import KnownLeads, seasoned_stats


def talk_history() -> PacingStats:
    stats = PacingStats()
    for i in range(300):
        stats.record_talk(60.0 + i)  # 60-359 s
        stats.record_wrap(10.0)
    return stats


def state(**fields: object) -> PacingInput:
    values: dict[str, object] = {"now": 100.0, "agents_logged_in": 3, "agents_ready": 1}
    values.update(fields)
    return PacingInput(**values)  # type: ignore[arg-type]


def test_leads_that_never_connect_go_at_once_and_the_walk_stops_at_a_risky_connect() -> None:
    # one agent ready, two on fresh calls: the first connect takes the ready agent, a second
    # one 10 s later would need a talk to end within 12 s: unlikely.
    snapshot = state(talk_elapsed=(0.0, 0.0))
    upcoming = [None, None, 10.0, None, 10.0, None]
    assert oracle_launches(snapshot, talk_history(), (), upcoming, 0.05) == 4


def test_a_connect_that_would_take_the_agent_of_a_call_in_flight_waits() -> None:
    snapshot = state(talk_elapsed=(0.0, 0.0), in_flight_elapsed=(5.0,))
    # the call in flight will need the ready agent in 6 s; a lead connecting in 4 s would take
    # that agent first and leave the call in flight abandoned
    assert oracle_launches(snapshot, talk_history(), (106.0,), [4.0], 0.05) == 0
    # once that agent is matched, the same lead is safe if a second agent is ready by then
    two_ready = replace(snapshot, agents_ready=2, talk_elapsed=(0.0,))
    assert oracle_launches(two_ready, talk_history(), (106.0,), [4.0], 0.05) == 1


def test_the_oracle_obeys_the_caps() -> None:
    pacer = OraclePacer(PacingSettings(line_cap=3, cps_cap=10), KnownLeads((), [None] * 10))
    assert pacer.decide(state(lines_in_use=1), talk_history()).launch == 2
    assert pacer.decide(state(agents_ready=0, agents_logged_in=0), talk_history()).launch == 0


def test_an_oracle_day_is_deterministic_and_beats_predictive_at_a_lower_abandon_rate() -> None:
    day = SimulationConfig(agents=10, hours=1.0, seed=3)
    oracle = simulate(replace(day, mode="oracle"))
    assert oracle == simulate(replace(day, mode="oracle"))
    predictive = simulate(day)
    assert oracle.occupancy > predictive.occupancy
    assert oracle.abandon_rate <= predictive.abandon_rate + 0.01


def test_a_known_talk_end_frees_its_agent_only_if_the_wrap_up_fits_before_the_horizon() -> None:
    # wrap-ups are all 10 s: with a 12.5 s horizon a talk must end within 2.5 s
    snapshot = state(talk_elapsed=(30.0, 30.0, 30.0), wrap_elapsed=(9.0,))
    free = known_free_probabilities(snapshot, talk_history(), (101.0, 102.5, 103.0), 12.5)
    assert free[:4] == [1.0, 1.0, 1.0, 0.0]  # the ready agent, then the three talks
    assert free[4] > 0.9  # the agent 9 s into a 10 s wrap-up is modelled as before


def test_knowing_which_calls_in_flight_connect_replaces_their_modelled_demand() -> None:
    stats = seasoned_stats(connect_rate=0.2)
    rules = PacingSettings()
    # one ready agent, two fresh calls in flight: the model counts each as a likely connect
    snapshot = state(agents_logged_in=5, talk_elapsed=(10.0,) * 4, in_flight_elapsed=(2.0, 2.0))
    modelled = decide(snapshot, rules, stats).launch
    neither = InformedPacer(rules, KnownLeads((), ()), Knowledge.CALLS_IN_FLIGHT)
    both = InformedPacer(rules, KnownLeads((108.0, 109.0), ()), Knowledge.CALLS_IN_FLIGHT)
    assert neither.decide(snapshot, stats).launch > modelled
    assert both.decide(snapshot, stats).launch == 0  # two connects for one agent already


@pytest.mark.parametrize("mode", INFORMED_MODES)
def test_an_informed_day_is_deterministic_and_holds_the_target(mode: str) -> None:
    day = SimulationConfig(agents=10, hours=2.0, seed=3, mode=mode)
    result = simulate(day)
    assert result == simulate(day)
    assert result.live_answers > 100
    assert result.abandon_rate <= 0.05
