"""One agent's search solved exactly: the call model adds up, the optimum is never beaten by
the threshold rule it is compared with, and the price of abandons moves it the right way."""

from __future__ import annotations

import pytest

from bench.bench_pacing_search import (
    CallModel,
    SearchProblem,
    evaluate,
    optimal_policy,
    same_threshold,
    threshold_policy,
)
from controller.dialer.simulate import SimulationConfig

CONFIG = SimulationConfig(machine_share=0.0, wrap=0.0)
MODEL = CallModel.of(CONFIG)
PROBLEM = SearchProblem(MODEL, 2, CONFIG.amd_seconds)


def test_a_launch_is_answered_by_a_person_at_the_answer_rate_and_every_call_ends() -> None:
    assert MODEL.answer_ahead[0] == pytest.approx(CONFIG.answer_rate * CONFIG.amd_accuracy)
    assert MODEL.rings_on[-1] == pytest.approx(0.0)
    # a call unanswered for long is less and less likely to be answered
    assert MODEL.answer_ahead[15] < MODEL.answer_ahead[10] < MODEL.answer_ahead[5]
    with pytest.raises(ValueError, match="no machines"):
        CallModel.of(SimulationConfig(machine_share=0.2))


def test_one_call_at_a_time_abandons_nothing_and_overlapping_calls_do() -> None:
    one_at_a_time = {state: int(not state) for state in PROBLEM.states}
    alone = evaluate(PROBLEM, one_at_a_time)
    assert alone.abandons_per_connect == pytest.approx(0.0, abs=1e-12)
    overlapping = evaluate(PROBLEM, threshold_policy(PROBLEM, 0.3))
    assert overlapping.abandons_per_connect > 0.0
    assert overlapping.seconds_to_connect < alone.seconds_to_connect


@pytest.mark.parametrize("lam", [100.0, 300.0])
def test_no_threshold_rule_beats_the_optimum_at_its_price(lam: float) -> None:
    optimum = evaluate(PROBLEM, optimal_policy(PROBLEM, lam))
    for theta in (0.2, 0.25, 0.3, 0.35, 0.4):
        rule = evaluate(PROBLEM, threshold_policy(PROBLEM, theta))
        assert (optimum.seconds_to_connect + lam * optimum.abandons_per_connect
                <= rule.seconds_to_connect + lam * rule.abandons_per_connect + 1e-6)


def test_dearer_abandons_buy_fewer_of_them_with_a_longer_wait() -> None:
    cheap, dear = (evaluate(PROBLEM, optimal_policy(PROBLEM, lam)) for lam in (100.0, 500.0))
    assert dear.abandons_per_connect < cheap.abandons_per_connect
    assert dear.seconds_to_connect > cheap.seconds_to_connect


def test_a_threshold_rule_is_found_equal_to_itself_and_not_to_one_call_at_a_time() -> None:
    assert same_threshold(PROBLEM, threshold_policy(PROBLEM, 0.3)) == pytest.approx(0.3, abs=0.03)
    one_at_a_time_but_two_when_empty = {state: 2 if not state else 0 for state in PROBLEM.states}
    assert same_threshold(PROBLEM, one_at_a_time_but_two_when_empty) is None
