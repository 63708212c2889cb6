"""Crash points for fault-injection tests: the controller kills itself at a named place.

``CALLCTL_CRASH_AT=<point>[:<n>]`` makes the process ``SIGKILL`` itself the ``n``-th time (1 if
not given) it passes ``<point>``: no cleanup, no flush, exactly like a power cut or an OOM kill,
so a test can prove that what was committed before that instant is enough to carry on. Unset in
production; an unknown point name is refused at start, so a typo cannot make a test pass.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from controller.logs import get_logger

log = get_logger("faults")

CRASH_ENV = "CALLCTL_CRASH_AT"
CRASH_POINTS = frozenset(
    {
        "after_claim_commit",
        "after_originate_sent",
        "after_customer_answered",
        "after_bridge",
        "after_callback_originate",
    }
)


@dataclass
class _Armed:
    point: str
    remaining: int


def _parse(value: str) -> _Armed | None:
    if not value:
        return None
    point, _, count = value.partition(":")
    if point not in CRASH_POINTS:
        known = ", ".join(sorted(CRASH_POINTS))
        raise ValueError(f"{CRASH_ENV}: unknown crash point {point!r} (one of {known})")
    try:
        remaining = int(count) if count else 1
    except ValueError:
        raise ValueError(
            f"{CRASH_ENV}: the count after ':' must be a whole number, got {count!r}"
        ) from None
    if remaining < 1:
        raise ValueError(f"{CRASH_ENV}: the count must be >= 1, got {remaining}")
    return _Armed(point, remaining)


_ARMED = _parse(os.environ.get(CRASH_ENV, ""))


def crash_point(point: str, **context: object) -> None:
    """Kill this process here if the crash switch names ``point`` and its count is reached;
    ``context`` (ids) goes into the last log line, so a test knows what was cut short."""
    assert point in CRASH_POINTS, point
    if _ARMED is None or _ARMED.point != point:
        return
    _ARMED.remaining -= 1
    if _ARMED.remaining == 0:
        log.warning("faults.crashing", point=point, **context)
        os.kill(os.getpid(), signal.SIGKILL)
