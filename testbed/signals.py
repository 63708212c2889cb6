"""How the testbed's long runs (``make demo``, ``make cluster``, ``python -m testbed.traffic``)
stop: Ctrl-C and SIGTERM raise ``KeyboardInterrupt`` in the main thread, so the run's
``finally`` stops every process it started."""

from __future__ import annotations

import signal
from types import FrameType


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_ctrl_c_and_sigterm() -> None:
    """SIGINT is set too, not left to Python's default: a process started in the background
    by a non-interactive shell (``cmd &``, as CI and scripts do) inherits SIGINT ignored, and
    Python then installs no handler of its own, so Ctrl-C did nothing (the demo test's
    intermittent hang: it ran on for 90 s after SIGINT, in runs started that way)."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
