"""The testbed's SIP proxy: one Kamailio 5.6 rendered from a site config, started, stopped.

``render_kamailio_to`` (what ``callctl render-conf --kamailio DIR`` runs) writes its files into
the instance's folder; Kamailio runs in the foreground (``-DD -E``, as root, logging to a file)
in its own session, and is ready when its control socket answers. ``dispatcher`` reads the
nodes' states as Kamailio sees them (``kamcmd dispatcher.list``). ``stop`` is SIGTERM (about
1.6 s), then SIGKILL.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from controller.site.deploy import render_kamailio_to
from controller.site.proxy import KAMAILIO_CFG

KAMAILIO_BINARY = "kamailio"
KAMCMD_BINARY = "kamcmd"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
_DESTINATION = re.compile(r"URI:\s*sip:(?P<uri>\S+)\s+FLAGS:\s*(?P<flags>\S+)")


class KamailioError(RuntimeError):
    """Kamailio could not be rendered, started, reached or stopped; the message says why."""


def test_port(slot: int) -> int:
    """The proxy of a test slot's cluster: clear of the slot's Asterisk and sipp ports."""
    return 15059 + 100 * slot


class KamailioInstance:
    """A Kamailio rendered from ``config_file`` (its ``[site.proxy]``) into ``directory``."""

    def __init__(self, config_file: Path, directory: Path) -> None:
        self.config_file = config_file
        self.directory = directory.resolve()
        self.log = self.directory / "kamailio.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def control_socket(self) -> str:
        return f"unix:{self.directory / 'kamailio_ctl'}"

    def start(self) -> None:
        binary = shutil.which(KAMAILIO_BINARY) or f"/usr/sbin/{KAMAILIO_BINARY}"
        if self.is_running():
            self.stop()
        render_kamailio_to(self.config_file, self.directory)
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [binary, "-f", str(self.directory / KAMAILIO_CFG), "-DD", "-E"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.directory, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None:
                raise KamailioError(f"kamailio exited ({self._process.returncode}) at start: "
                                    f"{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise KamailioError(f"kamailio: no control socket within {READY_TIMEOUT} s")
            time.sleep(0.05)

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            self._process = None
            return
        # the whole group: Kamailio's worker children outlive a main process killed alone
        # (one was found still running after a full test run)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        self._process = None

    def kamcmd(self, *command: str) -> str:
        try:
            result = subprocess.run([KAMCMD_BINARY, "-s", self.control_socket, *command],
                                    capture_output=True, text=True, timeout=5, check=False)
        except subprocess.TimeoutExpired:
            raise KamailioError(f"kamcmd {' '.join(command)}: no answer in 5 s") from None
        if result.returncode != 0:
            raise KamailioError(f"kamcmd {' '.join(command)}: {result.stderr.strip()}")
        return result.stdout

    def _answers(self) -> bool:
        try:
            self.kamcmd("core.version")
        except KamailioError:
            return False
        return True

    def dispatcher(self) -> dict[str, str]:
        """Every node's dispatcher flags by ``host:port``: ``AP`` active (probing), ``IP``
        inactive (probing), ``TP`` trying."""
        return {found.group("uri"): found.group("flags")
                for found in _DESTINATION.finditer(self.kamcmd("dispatcher.list"))}

    def registered(self) -> list[str]:
        """The users with a registered contact (usrloc)."""
        return re.findall(r"AoR:\s*(\S+)", self.kamcmd("ul.dump"))

    def agent_calls(self, agent: str) -> int:
        """How many dialogs of ``agent`` (ringing or up, either way) the proxy counts: an offer
        to an agent who has one is refused (kamailio.cfg's ONE_CALL)."""
        return int(self.kamcmd("dlg.profile_get_size", "agent_calls", agent).strip())

    def log_text(self) -> str:
        """Everything Kamailio logged (its xlog lines say what the routes decided)."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_text()[-characters:]


def _group_alive(group: int) -> bool:
    """Whether any process of the process group ``group`` is left."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
