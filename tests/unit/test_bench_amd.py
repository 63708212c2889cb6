"""The AMD bench's confusion matrix and its choice of AMD() parameters."""

from __future__ import annotations

from bench.bench_amd import Matrix, Verdict, choose
from testbed.greetings import Kind


def _matrix(humans: dict[str, int], machines: dict[str, int], seconds: float = 2.0) -> Matrix:
    matrix = Matrix()
    for kind, counts in ((Kind.HUMAN, humans), (Kind.MACHINE, machines)):
        for status, n in counts.items():
            matrix.verdicts += [Verdict(kind, status, f"{status}-1-2", seconds)] * n
    return matrix


def test_rows_count_each_verdict_per_kind_with_the_calls_that_gave_none() -> None:
    matrix = _matrix({"HUMAN": 45, "NOTSURE": 3, "MACHINE": 1, "": 1}, {"MACHINE": 40, "HUMAN": 10})
    assert matrix.rows() == [
        ["human", 50, 45, 1, 3, 0, 1, 0.02, 2.0],
        ["machine", 50, 10, 40, 0, 0, 0, 0.8, 2.0],
    ]
    assert matrix.causes(Kind.MACHINE, "HUMAN") == {"HUMAN": 10}


def test_choose_takes_the_most_machines_among_those_within_2_percent_of_humans() -> None:
    matrices = {
        "greedy": _matrix({"HUMAN": 47, "MACHINE": 3}, {"MACHINE": 50}),  # 6 % of humans
        "safe": _matrix({"HUMAN": 49, "MACHINE": 1}, {"MACHINE": 45, "HUMAN": 5}),
        "timid": _matrix({"HUMAN": 50}, {"MACHINE": 30, "HUMAN": 20}),
    }
    assert choose(matrices) == "safe"


def test_choose_breaks_ties_on_humans_hung_up_unsure_humans_then_speed() -> None:
    slow = _matrix({"HUMAN": 50}, {"MACHINE": 40, "HUMAN": 10}, seconds=3.0)
    fast = _matrix({"HUMAN": 50}, {"MACHINE": 40, "HUMAN": 10}, seconds=1.0)
    unsure = _matrix({"HUMAN": 45, "NOTSURE": 5}, {"MACHINE": 40, "HUMAN": 10}, seconds=0.5)
    hangs_up_one = _matrix({"HUMAN": 49, "MACHINE": 1}, {"MACHINE": 40, "HUMAN": 10},
                           seconds=0.5)
    assert choose({"slow": slow, "fast": fast, "unsure": unsure, "one": hangs_up_one}) == "fast"


def test_choose_finds_none_when_every_candidate_hangs_up_on_too_many_humans() -> None:
    assert choose({"bad": _matrix({"HUMAN": 40, "MACHINE": 10}, {"MACHINE": 50})}) is None
