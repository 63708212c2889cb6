"""The day simulator: accounting, regulation outcomes over seeds, and ``callctl simulate``."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from controller.cli.main import main
from controller.dialer.simulate import (
    INFORMED_MODES,
    SIMULATED_MODES,
    SimulationConfig,
    simulate,
    worst_window_rate,
)

SHORT_DAY = SimulationConfig(agents=10, hours=1.0, seed=3)


def test_same_seed_same_day() -> None:
    assert simulate(SHORT_DAY) == simulate(SHORT_DAY)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("agents", 0, "agents must be >= 1, got 0"),
        ("answer_rate", 20.0, "answer_rate must be in (0, 1] (a share, not a percent), got 20.0"),
        ("mode", "smart", "mode must be one of progressive, predictive"),
    ],
)
def test_a_bad_setting_is_named_with_its_rule(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        replace(SHORT_DAY, **{field: value})


@pytest.mark.parametrize("mode", (*SIMULATED_MODES, *INFORMED_MODES))
def test_counts_are_consistent(mode: str) -> None:
    result = simulate(replace(SHORT_DAY, mode=mode))
    assert result.calls >= result.answers
    assert result.answers >= result.live_answers + result.amd_false_positives
    assert result.answers >= result.machines_detected
    assert result.live_answers >= result.abandons
    assert 0.0 < result.occupancy < result.occupancy_limit
    assert result.abandon_rate <= result.worst_hour_abandon_rate


def test_progressive_never_abandons() -> None:
    result = simulate(replace(SHORT_DAY, mode="progressive"))
    assert result.live_answers > 0
    assert result.abandons == 0


@pytest.mark.parametrize("mode", SIMULATED_MODES)
def test_trunk_caps_hold_in_a_whole_day(mode: str) -> None:
    config = replace(SHORT_DAY, mode=mode, answer_rate=0.1, line_cap=12, cps_cap=2)
    assert simulate(config).peak_lines_in_use <= 12


def test_predictive_keeps_abandons_under_target_over_many_seeds() -> None:
    live = abandons = 0
    for seed in range(12):
        result = simulate(SimulationConfig(agents=25, hours=1.0, seed=100 + seed))
        live += result.live_answers
        abandons += result.abandons
        assert result.abandon_rate <= 0.05  # one hour of ~400 answers: 2 % of noise on top
    assert abandons / live <= 0.03


def test_predictive_beats_progressive_occupancy() -> None:
    progressive = simulate(replace(SHORT_DAY, agents=25, mode="progressive"))
    predictive = simulate(replace(SHORT_DAY, agents=25, mode="predictive"))
    assert predictive.occupancy > progressive.occupancy + 0.1


def test_worst_window_finds_the_bad_hour() -> None:
    answers = [float(t) for t in range(0, 3 * 3600, 36)]  # 100 per hour
    abandons = [7200.0 + t for t in range(5)]
    assert worst_window_rate(answers, abandons, 3 * 3600.0) == pytest.approx(0.05)


def test_config_rejects_out_of_range_values_by_name() -> None:
    with pytest.raises(ValueError, match="answer_rate"):
        SimulationConfig(answer_rate=1.5)
    with pytest.raises(ValueError, match="mode"):
        SimulationConfig(mode="preview")


def test_cli_prints_json_for_every_mode(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        ["simulate", "--agents", "5", "--hours", "0.25", "--answer-rate", "30%", "--mode", "all",
         "--json"]
    )
    rows = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [row["mode"] for row in rows] == list(SIMULATED_MODES)
    assert all(row["answer_rate"] == 0.3 for row in rows)


def test_cli_table_names_the_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--agents", "5", "--hours", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "abandon rate, worst 1 h" in out
    assert "agent wait between calls (s)" in out


def test_cli_refuses_a_ring_timeout_below_regulation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--ring-timeout", "10"]) == 2
    assert "ring_timeout must be >= 15" in capsys.readouterr().err


def test_a_fractional_cps_cap_spaces_a_whole_day() -> None:
    result = simulate(replace(SHORT_DAY, mode="progressive", cps_cap=0.5))
    assert 0 < result.calls <= SHORT_DAY.hours * 3600 * 0.5 + 1
