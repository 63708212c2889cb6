"""`make demo` on the real stack, as a subprocess: a short full run, and Ctrl-C midway.

The demo runs instance ``demo-testN`` on this session's slot ports (``--slot``), so it does not
collide with the demo instance or with the suite's own test instance. Afterwards no asterisk,
sipp, prometheus or controller of the run may remain: every one of them carries the instance
name or the run's state directory in its command line.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed import asterisk as testbed_asterisk
from testbed.asterisk import REPO_DIR, demo_test_name, ensure_root
from testbed.demo import OUTBOUND_AGENTS

# The longest the demo's cleanup may take after Ctrl-C, each step at its own bound: the callers'
# and the phones' sipp (5 s SIGTERM grace, then 5 s for SIGKILL, each), the controller (15 s,
# then 5 s), Prometheus (10 s, then 5 s), Asterisk (5 s `core stop now`, 10 s, 3 s, 3 s): 76 s.
STOP_TIMEOUT_S = 90

TRAFFIC = ["--rate", "12", "--patience", "30", "--agent-talk", "5", "15",
           "--customer-talk", "5", "12", "--drain", "10", "--status-interval", "10",
           "--seed", "7"]


def _demo(state_dir: Path, duration: int, *, sigint_ignored: bool = False
          ) -> subprocess.Popen[str]:
    """The demo as a subprocess; ``sigint_ignored`` starts it the way a background job of a
    non-interactive shell is started (CI, ``make test &``): with SIGINT ignored, which the demo
    must undo to obey Ctrl-C."""
    ensure_root()
    shell = ["bash", "-c", 'trap "" INT; exec "$@"', "bash"] if sigint_ignored else []
    return subprocess.Popen(
        [*shell, sys.executable, "-m", "testbed.demo",
         "--slot", str(testbed_asterisk.test_slot()),
         "--duration", str(duration), "--state-dir", str(state_dir), *TRAFFIC],
        cwd=REPO_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _leftovers(state_dir: Path) -> list[str]:
    """Processes and mounts of this demo run that are still there."""
    marks = (str(state_dir), f"callctl-{demo_test_name(testbed_asterisk.test_slot())}/")
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(mark in command for mark in marks):
            found.append(f"{proc.name}: {command}")
    mounts = Path("/proc/mounts").read_text().splitlines()
    return found + [m for m in mounts if any(mark in m for mark in marks)]


def _kill_run(demo: subprocess.Popen[str], state_dir: Path) -> None:
    """If the demo is still running or was killed, the test has failed: SIGKILL it and every
    process it started (it had no chance to stop them), so none outlives the test into the next
    ones. A demo that exited by itself is left alone: what it left behind is for the test to
    find."""
    if demo.poll() is None:
        demo.kill()
        demo.wait(10)
    if demo.returncode >= 0:
        return
    for found in _leftovers(state_dir):
        pid = found.split(":", 1)[0]
        if pid.isdigit():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass  # it ended meanwhile


def _interrupt(demo: subprocess.Popen[str], timeout: float) -> str:
    """Ctrl-C the demo and return the rest of its output. If it has not stopped within
    ``timeout``, the test fails with the demo's own account: every thread's stack (the demo
    dumps them on SIGUSR1) and the steps it finished stopping."""
    demo.send_signal(signal.SIGINT)
    try:
        return demo.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        demo.send_signal(signal.SIGUSR1)
        time.sleep(2)
        demo.kill()
        rest = demo.communicate(timeout=10)[0]
        pytest.fail(f"the demo had not stopped {timeout} s after Ctrl-C:\n{rest[-8000:]}")


def test_a_short_demo_ends_with_a_summary_that_agrees_with_store_and_prometheus(
    tmp_path: Path,
) -> None:
    state = tmp_path / "demo"
    demo = _demo(state, 35)
    try:
        output, _ = demo.communicate(timeout=150)
    finally:
        if demo.poll() is None:
            try:
                _interrupt(demo, STOP_TIMEOUT_S)
            finally:
                _kill_run(demo, state)
    assert demo.returncode == 0, output[-4000:]
    assert "=== summary ===" in output
    assert "campaign demo-outbound" in output and "[" in output  # live status with the bar
    summary = json.loads((state / "summary.json").read_text())
    rows = {row["label"].strip(): row for row in summary["rows"]}
    disagreeing = [r["label"] for r in summary["rows"] if r["agrees"] is False]
    assert not disagreeing, summary
    with sqlite3.connect(state / "callctl.db") as db:
        offered = db.execute("SELECT COUNT(*) FROM inbound_calls WHERE did = '5000'").fetchone()
        attempts = db.execute("SELECT COUNT(*) FROM attempts").fetchone()
    assert rows["inbound calls offered"]["store"] == offered[0]
    assert offered[0] >= 1  # Poisson at 12/min over 35 s: at least one caller arrived
    assert summary["traffic"]["callers_started"] == offered[0], summary["traffic"]
    assert rows["dialer attempts"]["store"] == attempts[0]
    assert rows["inbound calls offered"]["prom"] == offered[0]
    # each campaign agent's nailed-up line stays up until the demo ends it: one loss per agent
    gone = [line for line in (state / "controller.log").read_text().splitlines()
            if '"dialer.agent_gone"' in line]
    assert len(gone) <= len(OUTBOUND_AGENTS), gone
    assert _leftovers(state) == []


def test_ctrl_c_midway_leaves_no_process_or_mount(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    demo = _demo(state, 120, sigint_ignored=True)
    assert demo.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    try:
        for line in demo.stdout:  # wait until traffic flows (first live status)
            lines.append(line)
            if line.startswith("===") or time.monotonic() > deadline:
                break
        assert any(line.startswith("===") for line in lines), "".join(lines)
        time.sleep(5)
        rest = _interrupt(demo, STOP_TIMEOUT_S)
    finally:
        _kill_run(demo, state)
    assert demo.returncode == 130, "".join(lines) + rest
    assert "interrupted" in rest
    assert _leftovers(state) == []
