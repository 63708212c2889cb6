"""The simulator's oracle pacer: launches by known outcomes, bounded like every pacer."""

from __future__ import annotations

from dataclasses import replace

from controller.dialer.oracle import OraclePacer, oracle_launches
from controller.dialer.pacing import PacingInput, PacingSettings, PacingStats
from controller.dialer.simulate import SimulationConfig, simulate
from tests.unit.test_pacing import KnownLeads


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
