"""Pacing decisions: modes, fallbacks, caps and the history they rest on."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.dialer.oracle import InformedPacer, Knowledge, OraclePacer
from controller.dialer.pacing import (
    HOUR,
    AnswersFromStore,
    LiveAnswer,
    PacingInput,
    PacingMode,
    PacingSettings,
    PacingStats,
    _ExactBusy,
    decide,
    feedback_gain,
)
from controller.dialer.peer_pacers import ErlangFreeAgents, ModelPacer, Pacer, VicidialAdaptive


def seasoned_stats(
    connect_rate: float = 0.2, talk: float = 180.0, wrap: float = 15.0
) -> PacingStats:
    """A history of 500 attempts, talks and wrap-ups with the given shape."""
    stats = PacingStats()
    connect_every = round(1 / connect_rate)
    for i in range(500):
        connected = i % connect_every == 0
        stats.record_attempt(connected=connected, seconds=8.0 + i % 5 if connected else 20.0)
        stats.record_talk(talk * (0.5 + (i % 11) / 10))
        stats.record_wrap(wrap * (0.5 + (i % 7) / 6))
    return stats


def snapshot(**fields: object) -> PacingInput:
    values: dict[str, object] = {"now": 1000.0, "agents_logged_in": 10, "agents_ready": 0}
    values.update(fields)
    return PacingInput(**values)  # type: ignore[arg-type]


def test_progressive_keeps_one_call_in_flight_per_ready_agent() -> None:
    rules = PacingSettings(mode=PacingMode.PROGRESSIVE)
    decision = decide(
        snapshot(agents_ready=5, in_flight_elapsed=(1.0, 2.0), calls_waiting=1),
        rules,
        seasoned_stats(),
    )
    assert decision.launch == 2
    assert decision.reason == "progressive"


def test_preview_launches_the_calls_agents_asked_for_within_the_caps_and_never_more() -> None:
    rules = PacingSettings(mode=PacingMode.PREVIEW, line_cap=10, cps_cap=2)
    assert decide(snapshot(agents_ready=10), rules, seasoned_stats()).launch == 0
    asked = decide(snapshot(agents_ready=10, calls_asked=1), rules, seasoned_stats())
    assert (asked.launch, asked.reason) == (1, "preview: asked by agents")
    assert decide(snapshot(agents_ready=10, calls_asked=5), rules, seasoned_stats()).launch == 2
    full = snapshot(agents_ready=10, calls_asked=3, lines_in_use=9)
    assert decide(full, rules, seasoned_stats()).launch == 1


def test_predictive_dials_ahead_of_ready_agents_when_few_calls_connect() -> None:
    rules = PacingSettings(line_cap=200, cps_cap=100)
    decision = decide(snapshot(agents_ready=10), rules, seasoned_stats(connect_rate=0.2))
    assert decision.launch > 10
    assert decision.reason.startswith("predictive")


def test_predictive_counts_agents_about_to_finish() -> None:
    rules = PacingSettings(line_cap=200, cps_cap=100)
    stats = seasoned_stats()
    fresh = decide(snapshot(wrap_elapsed=(0.0,) * 10), rules, stats)
    finishing = decide(snapshot(wrap_elapsed=(14.0,) * 10), rules, stats)
    assert finishing.launch > fresh.launch


def test_predictive_stops_when_answered_calls_already_wait() -> None:
    rules = PacingSettings(line_cap=200, cps_cap=100)
    decision = decide(snapshot(agents_ready=2, calls_waiting=6), rules, seasoned_stats())
    assert decision.launch == 0


@pytest.mark.parametrize(
    ("stats", "logged_in", "reason"),
    [
        (PacingStats(), 10, "too little history"),
        (seasoned_stats(), 2, "too few agents"),
    ],
)
def test_predictive_falls_back_to_progressive(
    stats: PacingStats, logged_in: int, reason: str
) -> None:
    decision = decide(snapshot(agents_logged_in=logged_in, agents_ready=2), PacingSettings(), stats)
    assert decision.launch == 2
    assert decision.reason == f"progressive fallback: {reason}"


def test_hot_abandon_window_lowers_the_feedback_gain() -> None:
    rules = PacingSettings()
    cold, hot = PacingStats(), PacingStats()
    for i in range(400):
        cold.record_live_answer(float(i), abandoned=False)
        hot.record_live_answer(float(i), abandoned=i % 20 == 0)  # 5 %
    assert feedback_gain(400.0, rules, hot) < 1.0 < feedback_gain(400.0, rules, cold)


def test_a_high_target_never_launches_a_call_more_likely_abandoned_than_connected() -> None:
    # 40 % target, windows clean: the feedback would put the per-call bound above 1.
    rules = PacingSettings(abandon_target=0.4, line_cap=200, cps_cap=100)
    stats = seasoned_stats(connect_rate=0.1)
    for second in range(400):
        stats.record_live_answer(float(second), abandoned=False)
    decision = decide(snapshot(now=400.0, agents_ready=1), rules, stats)
    # One free agent, one connect in ten: the 8th call would find the agent taken with
    # probability 1 - 0.9**7 = 0.52 > 0.5 (the normal approximation stops at about 7).
    assert 2 <= decision.launch <= 8
    assert "alpha=0.5000" in decision.reason


@pytest.mark.parametrize("waiting", [0, 1, 5])
def test_small_team_risk_is_the_exact_sum_over_outcomes(waiting: int) -> None:
    free_qs, demand_qs, new_call = [1.0, 0.5, 0.2], [0.3, 0.05, 0.05], 0.1
    risk = _ExactBusy(free_qs, demand_qs, waiting)
    risk.add_call(new_call)
    brute = 0.0
    qs = [*free_qs, *demand_qs, new_call]
    for outcome in itertools.product((0, 1), repeat=len(qs)):
        weight = math.prod(q if hit else 1.0 - q for q, hit in zip(qs, outcome, strict=True))
        free, demand = sum(outcome[:3]), waiting + sum(outcome[3:])
        brute += weight * (demand >= free)
    assert risk.busy() == pytest.approx(brute)


def test_abandon_windows_slide() -> None:
    stats = PacingStats()
    stats.record_live_answer(0.0, abandoned=True)
    stats.record_live_answer(2 * HOUR, abandoned=False)
    totals = stats.window_totals(2 * HOUR)
    assert totals == {1.0: (1, 0), 24.0: (2, 1), 720.0: (2, 1)}


def test_answers_from_the_store_count_once_each_however_often_they_are_read() -> None:
    stats = PacingStats(window_hours=(1.0,))
    answers = AnswersFromStore(stats, start=100.0, overlap=30.0)
    first = [LiveAnswer("a1", "w2", 90.0, False), LiveAnswer("a2", "w2", 110.0, True)]
    assert answers.take(first) == 2
    assert answers.since == 80.0  # the newest counted, less the overlap
    # the next read reaches back over both, and brings a third
    assert answers.take([*first, LiveAnswer("a3", "w2", 112.0, False)]) == 1
    assert stats.window_totals(120.0) == {1.0: (3, 1)}


def test_an_answer_committed_after_a_later_one_is_still_counted() -> None:
    stats = PacingStats(window_hours=(1.0,))
    answers = AnswersFromStore(stats, start=0.0, overlap=30.0)
    answers.take([LiveAnswer("later", "w2", 200.0, False)])
    # "earlier" ended first but its worker committed it after the read above
    assert answers.take([LiveAnswer("earlier", "w3", 190.0, True),
                         LiveAnswer("later", "w2", 200.0, False)]) == 1
    assert stats.window_totals(200.0) == {1.0: (2, 1)}


def test_campaign_windows_replace_the_defaults() -> None:
    stats = PacingStats(window_hours=(1.0, 24.0))
    stats.record_live_answer(0.0, abandoned=True)
    assert stats.window_totals(25 * HOUR) == {1.0: (0, 0), 24.0: (0, 0)}
    with pytest.raises(ValueError, match="window_hours"):
        PacingStats(window_hours=())


@pytest.mark.parametrize(
    ("since_last", "launch"), [(1.0, 0), (1.9, 0), (2.0, 1), (math.inf, 1)]
)
def test_a_fractional_cps_cap_spaces_launches(since_last: float, launch: int) -> None:
    rules = PacingSettings(mode=PacingMode.PROGRESSIVE, cps_cap=0.5)
    state = snapshot(agents_ready=5, seconds_since_last_launch=since_last)
    assert decide(state, rules, PacingStats()).launch == launch


def test_old_ringing_calls_are_less_likely_to_connect() -> None:
    stats = seasoned_stats()
    fresh, old, at_timeout = stats.in_flight_connect_probabilities([0.0, 10.0, 19.0], 30.0)
    assert fresh == pytest.approx(stats.connect_rate)
    assert old < fresh
    assert at_timeout == 0.0


def answered_history() -> PacingStats:
    """500 attempts: one in five answered after 5-9 s, three answers in four needing an agent
    2.5 s later (AMD), the rest ringing out at 20 s."""
    stats = PacingStats()
    for i in range(500):
        answered_after = 5.0 + i // 5 % 5 if i % 5 == 0 else None
        connected = answered_after is not None and i // 5 % 4 != 0
        seconds = answered_after + 2.5 if connected and answered_after is not None else 20.0
        stats.record_attempt(connected=connected, seconds=seconds, answered_after=answered_after)
    return stats


def test_ringing_calls_are_judged_by_when_answers_come_not_when_connects_do() -> None:
    stats = answered_history()
    assert (stats.answer_rate, stats.connects_per_answer) == (0.2, 0.75)
    # a fresh call connects within 10 s (the mean connect, 9.5 s, plus) if answered within
    # 10 - 2.5 s: the answers at 5, 6 and 7 s, three in five
    fresh, past_every_answer = stats.in_flight_connect_probabilities([0.0, 9.5], 10.0)
    assert math.isclose(fresh, 0.2 * 0.75 * 3 / 5)
    assert past_every_answer == 0.0


def test_a_call_in_amd_takes_the_ready_agent_a_call_ringing_past_every_answer_does_not() -> None:
    stats = answered_history()
    rules = PacingSettings()
    # one ready agent: a call in AMD will need it with 0.75, one ringing for 9.5 s never will
    in_amd = decide(snapshot(agents_ready=1, calls_screening=1), rules, stats)
    rung_out = decide(snapshot(agents_ready=1, in_flight_elapsed=(9.5,)), rules, stats)
    assert in_amd.launch == 0
    assert rung_out.launch >= 1


def test_running_calls_delay_the_predicted_end_of_long_calls() -> None:
    stats = PacingStats()
    for seconds in (30.0, 60.0, 90.0, 120.0):
        stats.record_talk(seconds)
    [alone] = stats.talk_end_probabilities([100.0], [30.0])
    with_long_calls_running = stats.talk_end_probabilities([100.0, 200.0, 250.0, 300.0], [30.0])
    assert alone == 1.0
    assert with_long_calls_running[0] == pytest.approx(1 / 4)


@pytest.mark.parametrize(
    ("field", "value"),
    [("ring_timeout", 14.0), ("abandon_target", 0.0), ("line_cap", 0), ("cps_cap", 0)],
)
def test_settings_reject_bad_values_by_name(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        PacingSettings(**{field: value})  # type: ignore[arg-type]


@dataclass(frozen=True)
class KnownLeads:
    """The world's foresight as fixed values."""

    connects: Sequence[float]
    leads: Sequence[float | None]
    ends: Sequence[float] = ()

    def connect_times(self) -> Sequence[float]:
        return self.connects

    def upcoming(self, count: int) -> Sequence[float | None]:
        return self.leads[:count]

    def talk_ends(self) -> Sequence[float]:
        return self.ends


def pacers(rules: PacingSettings) -> list[Pacer]:
    world = KnownLeads((3.0, 8.0), [None, 9.0, None, None, 4.0, 12.0] * 60, (1005.0, 1300.0))
    return [
        OraclePacer(rules, world),
        *(InformedPacer(rules, world, knows) for knows in Knowledge),
        ModelPacer(rules),
        ModelPacer(PacingSettings(mode=PacingMode.PROGRESSIVE, line_cap=rules.line_cap,
                                  cps_cap=rules.cps_cap)),
        VicidialAdaptive(rules, shift_seconds=8 * HOUR),
        ErlangFreeAgents(rules),
    ]


SHARED_STATS = seasoned_stats(connect_rate=0.1)


@st.composite
def situations(draw: st.DrawFn) -> tuple[PacingInput, PacingSettings]:
    logged_in = draw(st.integers(0, 60))
    ready = draw(st.integers(0, logged_in))
    talking = draw(st.integers(0, logged_in - ready))
    wrapping = draw(st.integers(0, logged_in - ready - talking))
    elapsed = st.floats(0.0, 900.0, allow_nan=False)
    line_cap = draw(st.integers(1, 300))
    cps_cap = draw(st.one_of(st.integers(1, 50), st.sampled_from([0.2, 0.5])))
    rules = PacingSettings(line_cap=line_cap, cps_cap=cps_cap)
    state = PacingInput(
        now=draw(st.floats(0.0, 40 * 24 * HOUR)),
        agents_logged_in=logged_in,
        agents_ready=ready,
        talk_elapsed=tuple(draw(st.lists(elapsed, min_size=talking, max_size=talking))),
        wrap_elapsed=tuple(draw(st.lists(elapsed, min_size=wrapping, max_size=wrapping))),
        in_flight_elapsed=tuple(draw(st.lists(st.floats(0.0, 30.0), max_size=40))),
        calls_waiting=draw(st.integers(0, 10)),
        lines_in_use=draw(st.integers(0, line_cap + 5)),
        launches_last_second=draw(st.integers(0, math.ceil(cps_cap) + 5)),
        seconds_since_last_launch=draw(st.floats(0.0, 10.0)),
    )
    return state, rules


@settings(max_examples=300, deadline=None)
@given(situations())
def test_no_pacer_breaks_a_cap_or_dials_without_agents(
    situation: tuple[PacingInput, PacingSettings],
) -> None:
    state, rules = situation
    for pacer in pacers(rules):
        launch = pacer.decide(state, SHARED_STATS).launch
        assert 0 <= launch
        assert state.lines_in_use + launch <= max(rules.line_cap, state.lines_in_use)
        cps_limit = math.ceil(rules.cps_cap)  # a fractional cap allows 1 now and then
        assert state.launches_last_second + launch <= max(cps_limit, state.launches_last_second)
        if rules.cps_cap < 1 and state.seconds_since_last_launch < 1 / rules.cps_cap:
            assert launch == 0
        if state.agents_logged_in == 0 or state.agents_available_soon == 0:
            assert launch == 0
