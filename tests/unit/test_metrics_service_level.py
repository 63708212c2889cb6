"""The service-level formula of ``callctl_queue_service_level_ratio``."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.metrics.service_level import service_level_ratio

waits = st.lists(st.floats(min_value=0, max_value=3600, allow_nan=False), max_size=50)


def test_no_counted_call_is_full_service() -> None:
    assert service_level_ratio([], [3.0], threshold_s=20, short_abandon_s=5) == 1.0


def test_answered_within_threshold_over_answered_plus_long_abandons() -> None:
    ratio = service_level_ratio(
        [5.0, 20.0, 21.0, 60.0], [4.0, 5.0, 30.0, 90.0], threshold_s=20, short_abandon_s=5
    )
    # within: 5, 20 (boundary counts); offered: 4 answered + 2 abandons longer than 5 s
    assert ratio == pytest.approx(2 / 6)


def test_negative_thresholds_are_rejected() -> None:
    with pytest.raises(ValueError, match="threshold"):
        service_level_ratio([1.0], [], threshold_s=-1, short_abandon_s=5)


@given(answered=waits, abandoned=waits, threshold=st.floats(0, 600), short=st.floats(0, 60))
def test_ratio_is_always_a_number_between_0_and_1(
    answered: list[float], abandoned: list[float], threshold: float, short: float
) -> None:
    ratio = service_level_ratio(answered, abandoned, threshold_s=threshold, short_abandon_s=short)
    assert not math.isnan(ratio)
    assert 0.0 <= ratio <= 1.0


@given(answered=waits, abandoned=waits)
def test_a_longer_threshold_never_lowers_the_service_level(
    answered: list[float], abandoned: list[float]
) -> None:
    short = service_level_ratio(answered, abandoned, threshold_s=10, short_abandon_s=5)
    long = service_level_ratio(answered, abandoned, threshold_s=30, short_abandon_s=5)
    assert long >= short
