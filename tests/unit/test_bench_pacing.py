"""The pacing bench's reading of the oracle at predictive's abandon rate."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.bench_pacing import Days, _occupancy_at
from controller.dialer.simulate import SimulationConfig, simulate

DAY = simulate(SimulationConfig(agents=5, hours=0.25, seed=1))


def days(occupancy_share: float, abandon_rate: float) -> Days:
    """One day with the given share of the occupancy limit and abandon rate."""
    abandons = round(abandon_rate * 1000)
    result = replace(
        DAY, occupancy=occupancy_share * DAY.occupancy_limit, live_answers=1000, abandons=abandons
    )
    return Days((result,))


def test_occupancy_is_read_between_the_runs_around_the_rate() -> None:
    runs = [days(0.95, 0.030), days(0.90, 0.010), days(0.93, 0.020)]
    assert _occupancy_at(0.025, runs) == pytest.approx(0.94)
    assert _occupancy_at(0.010, runs) == pytest.approx(0.90)


def test_past_the_last_run_the_two_nearest_are_extended() -> None:
    runs = [days(0.90, 0.010), days(0.93, 0.020)]
    assert _occupancy_at(0.030, runs) == pytest.approx(0.96)
    assert _occupancy_at(0.005, runs) == pytest.approx(0.885)
