"""Service level of a queue: the share of callers served fast enough (pure).

Definition used by ``callctl_queue_service_level_ratio``:

    answered within threshold / (answered + abandoned after the short-abandon threshold)

A caller who hangs up within ``short_abandon_s`` (misdial, changed mind) says nothing about the
queue and is left out of both sides. A window without any counted call has a service level of
1.0: nobody was kept waiting, and the value stays a number (no NaN) so alerts and dashboards
need no special case.
"""

from __future__ import annotations

from collections.abc import Iterable


def service_level_ratio(
    answered_waits_s: Iterable[float],
    abandoned_waits_s: Iterable[float],
    *,
    threshold_s: float,
    short_abandon_s: float,
) -> float:
    """Return the service level in [0, 1] for the calls of one window (see module docstring).

    Waits equal to ``threshold_s`` count as within threshold; abandons equal to
    ``short_abandon_s`` count as short.
    """
    if threshold_s < 0 or short_abandon_s < 0:
        raise ValueError("threshold_s and short_abandon_s must be >= 0")
    answered = list(answered_waits_s)
    within = sum(1 for wait in answered if wait <= threshold_s)
    counted_abandons = sum(1 for wait in abandoned_waits_s if wait > short_abandon_s)
    offered = len(answered) + counted_abandons
    return within / offered if offered else 1.0
