"""The systemd units of deploy/systemd pass ``systemd-analyze verify`` (checked, not started).

verify insists that every ``Exec*=`` program exists, so the copies checked here have only
their programs moved to where this machine has them: the venv's ``callctl`` for the install
prefix, the testbed root's Asterisk for the host one. Every other line is the shipped unit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.asterisk import REPO_DIR, ensure_root

UNITS = sorted((REPO_DIR / "deploy" / "systemd").glob("*.service"))
INSTALLED_CALLCTL = "/opt/callctl/venv/bin/callctl"
HOST_ASTERISK = "=/usr/sbin/asterisk"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze not installed (Makefile: host-packages)")


def local_copies(target: Path) -> list[Path]:
    callctl = Path(sys.executable).parent / "callctl"
    asterisk = ensure_root() / "usr" / "sbin" / "asterisk"
    assert callctl.exists() and asterisk.exists()
    copies = []
    for unit in UNITS:
        text = unit.read_text()
        assert INSTALLED_CALLCTL in text  # every unit renders or runs through callctl
        copy = target / unit.name
        copy.write_text(text.replace(INSTALLED_CALLCTL, str(callctl))
                        .replace(HOST_ASTERISK, f"={asterisk}"))
        copies.append(copy)
    return copies


def test_every_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    assert [unit.name for unit in UNITS] == [
        "callctl-asterisk-host.service", "callctl-asterisk.service", "callctl.service"]
    result = subprocess.run(["systemd-analyze", "verify", *map(str, local_copies(tmp_path))],
                            capture_output=True, text=True, timeout=60, check=False)
    # verify exits 0 on unknown keys too, but warns: a clean run says nothing
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_units_restart_log_to_the_journal_and_the_controller_has_its_own_user() -> None:
    for unit in UNITS:
        text = unit.read_text()
        assert "\nRestart=on-failure\n" in text, unit.name
        assert "\nStandardError=journal\n" in text, unit.name
    controller = (REPO_DIR / "deploy" / "systemd" / "callctl.service").read_text()
    assert "\nUser=callctl\n" in controller and "\nNoNewPrivileges=yes\n" in controller
