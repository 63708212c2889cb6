"""One Asterisk 22 instance of the testbed: rendered config, start, readiness, CLI, stop.

Asterisk runs from the Debian sid root built by ``scripts/asterisk-root.sh`` (Debian 12 has no
Asterisk), as ``chroot ROOT /usr/sbin/asterisk -C /etc/callctl-NAME/asterisk.conf -f -n`` in its
own session. Every instance has its own config, run, spool, astdb and log directories inside
the root, so the demo instance and the test instance coexist on different ports. With
``CALLCTL_ASTERISK=host`` the host's own ``asterisk`` binary is used instead, no chroot, with
all directories under the instance's state directory.

Readiness means what a client needs: the AMI banner answers, ARI answers an authenticated
request, and ``core waitfullybooted`` returns. Stopping is ``core stop now`` and a wait on the
PID, escalating to signals when Asterisk does not exit.
"""

from __future__ import annotations

import base64
import errno
import os
import shutil
import signal
import socket
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from controller.inbound.asterisk_conf import write_asterisk_files
from controller.inbound.config import InboundConfig
from controller.site.deploy import render_to
from controller.site.secrets import SiteSecrets, read_secrets

REPO_DIR = Path(__file__).resolve().parent.parent
# the site config every instance renders from, with only its ports and folders changed
EXAMPLE_CONFIG = REPO_DIR / "controller.example.toml"
BUILD_SCRIPT = REPO_DIR / "scripts" / "asterisk-root.sh"
DEFAULT_ROOT = Path("/var/cache/callctl/asterisk-root")
ROOT_ENV = "CALLCTL_ASTERISK_ROOT"
MODE_ENV = "CALLCTL_ASTERISK"
ROOT_MARKER = ".callctl-root-ok"
ASTERISK_IN_ROOT = "/usr/sbin/asterisk"
CARRIER_IP = "127.0.0.2"
AGENT_PHONE_IP = "127.0.0.3"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class AsteriskError(RuntimeError):
    """The instance could not be built, started, reached or stopped; the message says why."""


@dataclass(frozen=True)
class Ports:
    """Loopback ports of one instance and of the sipp peers its config points at."""

    sip: int
    ami: int
    http: int  # ARI and /metrics
    rtp_start: int
    rtp_end: int
    trunk: int  # the simulated carrier (sipp UAS on CARRIER_IP)
    agent_phone: int | None = None  # one sipp UAS answering for every agent, tests only


DEMO_PORTS = Ports(sip=5060, ami=5038, http=8088, rtp_start=10000, rtp_end=10999, trunk=5070)
SLOT_ENV = "CALLCTL_TEST_SLOT"


def test_slot() -> int:
    """Which of 8 side-by-side test sessions this is (``CALLCTL_TEST_SLOT``, default 0): each
    slot has its own instance name and ports, so parallel runs on one machine do not collide."""
    slot = int(os.environ.get(SLOT_ENV) or 0)
    if not 0 <= slot < 8:
        raise AsteriskError(f"{SLOT_ENV} must be 0-7, got {slot}")
    return slot


def _slot_ports(slot: int, offset: int, rtp_start: int) -> Ports:
    """Ports of an instance in test slot ``slot``: slots 100 ports apart, instances within a
    slot ``offset`` apart, each with 500 RTP ports of the slot's 1000."""
    step = 100 * slot + offset
    return Ports(
        sip=15060 + step, ami=15038 + step, http=18088 + step,
        rtp_start=rtp_start + 1000 * slot, rtp_end=rtp_start + 499 + 1000 * slot,
        trunk=15070 + step, agent_phone=15080 + step,
    )


def test_ports(slot: int) -> Ports:
    """The suite's own instance of a slot."""
    return _slot_ports(slot, 0, 30000)


def demo_test_name(slot: int) -> str:
    """The demo's instance when the suite runs it: one per slot, like the suite's own
    (``test``, ``test1``, ...), since an instance's name is its config and run directory and
    starting one stops whatever ran under that name."""
    return f"demo-test{slot or ''}"


def demo_test_ports(slot: int) -> Ports:
    """The ports of ``demo_test_name(slot)``, beside the suite's own instance."""
    return _slot_ports(slot, 50, 30500)


def node_test_ports(slot: int, node: int) -> Ports:
    """Node 1 or 2 of a slot's cluster (each on its own address, ``node_address``)."""
    return _slot_ports(slot, (25, 75)[node - 1], (40000, 40500)[node - 1])


def node_address(node: int) -> str:
    """The loopback address of cluster node ``node`` (127.0.1.N): its SIP binds there."""
    return f"127.0.1.{node}"


def root_dir() -> Path:
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def host_mode() -> bool:
    return os.environ.get(MODE_ENV) == "host"


def ensure_root() -> Path:
    """Build the Asterisk root unless a sane one exists (the script is idempotent)."""
    if host_mode():
        return Path("/")
    root = root_dir()
    if (root / ROOT_MARKER).exists() and (root / ASTERISK_IN_ROOT.lstrip("/")).exists():
        return root
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise AsteriskError(f"building the Asterisk root at {root} failed (see output above)")
    return root


class AsteriskInstance:
    """A named instance; ``state_dir`` (host) keeps its secrets and its console log."""

    def __init__(
        self, name: str, state_dir: Path, ports: Ports, *, ari_app: str = "callctl",
        fresh: bool = False, sip_address: str = "127.0.0.1", secrets_file: Path | None = None,
        proxy: dict[str, Any] | None = None, more_agents: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.state_dir = state_dir.resolve()
        self.ports = ports
        self.ari_app = ari_app
        self.fresh = fresh  # start from scratch: no rendered queues, logs, CDRs, astdb
        self.host = host_mode()
        self.root = Path("/") if self.host else root_dir()
        # a cluster's nodes share one store: the agents' passwords are the site's
        self.secrets_file = (secrets_file or self.state_dir / "secrets.json").resolve()
        self.sip_address = sip_address
        self.proxy = proxy  # [site.proxy]: a node of a cluster behind Kamailio
        # agents the site has beyond the example's five (a campaign of 2 x 4 agents)
        self.more_agents = tuple(more_agents)
        if self.host:
            base = self.state_dir / "asterisk"
            self.etc_dir, self.run_dir, self.spool_dir, self.db_dir, self.log_dir = (
                base / part for part in ("etc", "run", "spool", "db", "log")
            )
        else:
            tag = f"callctl-{name}"
            self.etc_dir = Path("/etc") / tag
            self.run_dir = Path("/run") / tag
            self.spool_dir = Path("/var/spool") / tag
            self.db_dir = Path("/var/lib") / tag
            self.log_dir = Path("/var/log") / tag
        self.console_log = self.state_dir / f"asterisk-{name}.log"
        # the controller's routing: its queues and dialplan are generated into the config dir
        self.inbound: InboundConfig | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # ---- paths as the host sees them -----------------------------------------------------
    def host_path(self, inside: Path) -> Path:
        return inside if self.host else self.root / inside.relative_to("/")

    @property
    def config_dir(self) -> Path:
        """Host path of the rendered config (the controller writes callctl-queues.conf here)."""
        return self.host_path(self.etc_dir)

    @property
    def monitor_dir(self) -> Path:
        """Host path where MixMonitor puts recordings given a relative file name."""
        return self.host_path(self.spool_dir / "monitor")

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    @property
    def secrets(self) -> SiteSecrets:
        """The instance's generated secrets (its site's store, written by the first render)."""
        stored = read_secrets(self.secrets_file)
        if stored is None:
            raise AsteriskError(f"Asterisk {self.name}: no secrets yet in {self.secrets_file}")
        return stored

    # ---- config ---------------------------------------------------------------------------
    def site_settings(self) -> dict[str, Any]:
        """The example site config with this instance's ports, folders and secrets store:
        everything else is what a site deploys."""
        data = tomllib.loads(EXAMPLE_CONFIG.read_text())
        ports, site = self.ports, data["site"]
        data["ami"] = {**data["ami"], "port": ports.ami}
        data["ari"] = {**data["ari"], "url": self.ari_url, "app": self.ari_app}
        data["site"] = {
            **site, "secrets_file": str(self.secrets_file),
            "asterisk": {"config_dir": str(self.etc_dir), "run_dir": str(self.run_dir),
                         "spool_dir": str(self.spool_dir), "db_dir": str(self.db_dir),
                         "log_dir": str(self.log_dir)},
            "sip": {**site["sip"], "bind": self.sip_address, "port": ports.sip},
            "rtp": {"start": ports.rtp_start, "end": ports.rtp_end},
            "http": {**site["http"], "port": ports.http},
            "trunk": {**site["trunk"], "host": CARRIER_IP, "port": ports.trunk},
        }
        if self.proxy is not None:
            data["site"]["proxy"] = self.proxy
        data["agents"] = {**data["agents"], **{
            agent: {"name": f"Agent {agent}", "team": "sales"} for agent in self.more_agents}}
        # the instance's own name in its uniqueids and its controller's store rows: two
        # instances on one store (a cluster's nodes) never share a channel id
        data["node"] = {**data.get("node", {}), "name": self.name}
        return data

    def prepare_directories(self) -> None:
        """Create the instance's directories, emptied first for a ``fresh`` instance."""
        owned = (self.etc_dir, self.spool_dir, self.db_dir, self.log_dir)
        if self.fresh:
            for inside in owned:
                shutil.rmtree(self.host_path(inside), ignore_errors=True)
        # cdr_csv writes into cdr-csv/ but never creates it
        for inside in (*owned, self.run_dir, self.spool_dir / "monitor", self.log_dir / "cdr-csv"):
            self.host_path(inside).mkdir(parents=True, exist_ok=True)

    def render_config(self) -> None:
        """Render the site config into the config dir (``callctl render-conf``'s own code)
        and create the instance's directories."""
        self.prepare_directories()
        site_file = self.state_dir / "site.toml"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        site_file.write_text(tomli_w.dumps(self.site_settings()))
        # test-only: one sipp UAS answers for every agent, so their AORs point at it
        contact = (f"sip:{AGENT_PHONE_IP}:{self.ports.agent_phone}"
                   if self.ports.agent_phone else None)
        render_to(site_file, self.config_dir, agent_contact=contact)
        if self.inbound is not None:  # a test's own routing, kept across restarts
            write_asterisk_files(self.inbound, self.ari_app, self.config_dir)

    def hang_up_all(self, timeout: float = 5.0) -> None:
        """Hang up every channel and wait until none is left (or ``timeout`` passed)."""
        self.cli("channel request hangup all")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.cli("core show channels count").startswith("0 active channels"):
                return
            time.sleep(0.1)

    def install_inbound(self, inbound: InboundConfig) -> None:
        """Generate queues and dialplan from ``inbound`` and, if running, load them."""
        self.inbound = inbound
        write_asterisk_files(inbound, self.ari_app, self.config_dir)
        if self.is_running():
            self.cli("module reload app_queue.so")
            self.cli("dialplan reload")

    # ---- process --------------------------------------------------------------------------
    def _command(self, *args: str) -> list[str]:
        conf = str(self.etc_dir / "asterisk.conf")
        if self.host:
            binary = shutil.which("asterisk") or ASTERISK_IN_ROOT
            return [binary, "-C", conf, *args]
        return ["chroot", str(self.root), ASTERISK_IN_ROOT, "-C", conf, *args]

    def pid(self) -> int | None:
        """PID of this instance's running Asterisk (from its pid file), or None."""
        try:
            pid = int(self.host_path(self.run_dir / "asterisk.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self, entrypoint: Sequence[str] = ()) -> None:
        """Render config, start Asterisk, return once AMI, ARI and the core are ready.

        A previous run of the same instance is stopped first: its config may be stale.
        ``entrypoint`` runs Asterisk's command line through a wrapper (a container's
        entrypoint script under test) that ends by exec-ing it.
        """
        if not self.host:
            ensure_root()
        if self.is_running():
            self.stop()
        self._check_ports_free()
        self.render_config()
        self.host_path(self.run_dir / "asterisk.pid").unlink(missing_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.console_log.open("ab") as log:
            # start_new_session: Ctrl-C on a terminal must not reach Asterisk directly;
            # stop() ends it cleanly instead.
            self._process = subprocess.Popen(
                [*entrypoint, *self._command("-f", "-n")], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """``core stop now``, wait for the PID; SIGTERM then SIGKILL if it lingers."""
        pid = self.pid() or (self._process.pid if self._process else None)
        if pid is None:
            return
        try:
            self.cli("core stop now", timeout=5)
        except AsteriskError:
            pass  # not answering on its control socket: signals below
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                _signal(pid, sig)
            if self._wait_exit(pid, STOP_TIMEOUT if sig is None else 3.0):
                break
        else:
            raise AsteriskError(f"Asterisk {self.name} (pid {pid}) survived SIGKILL")
        self._process = None

    def kill(self) -> None:
        """SIGKILL, as in a crash (no Hangup events, no goodbye on AMI), and wait until it has
        exited: its main thread turns zombie before the others have let go of its sockets, and
        a start until then finds its ports in use (waiting on our own child covers them all)."""
        pid = self.pid()
        if pid is None:
            return
        _signal(pid, signal.SIGKILL)
        if not self._wait_exit(pid, 5.0):
            raise AsteriskError(f"Asterisk {self.name} (pid {pid}) survived SIGKILL")
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cli(self, command: str, timeout: float = 10.0) -> str:
        """Run one CLI command (``asterisk -rx``) and return its output."""
        try:
            result = subprocess.run(
                self._command("-rx", command), capture_output=True, text=True, timeout=timeout,
                stdin=subprocess.DEVNULL, check=False,
            )
        except subprocess.TimeoutExpired:
            raise AsteriskError(f"`{command}` timed out after {timeout} s") from None
        if result.returncode != 0:
            reason = (result.stderr or result.stdout).strip()
            raise AsteriskError(f"`{command}` failed ({result.returncode}): {reason}")
        return result.stdout

    # ---- readiness ------------------------------------------------------------------------
    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        waits = (("AMI banner", self._ami_banner), ("ARI", self._ari_ok),
                 ("core waitfullybooted", self._fully_booted))
        for what, probe in waits:
            while not probe():
                if self._process is not None and self._process.poll() is not None:
                    raise AsteriskError(
                        f"Asterisk {self.name} exited ({self._process.returncode}) before {what};"
                        f" see {self.console_log} and {self.host_path(self.log_dir)}/messages.log"
                    )
                if time.monotonic() > deadline:
                    raise AsteriskError(
                        f"Asterisk {self.name}: no {what} within {READY_TIMEOUT} s;"
                        f" see {self.console_log}"
                    )
                time.sleep(0.1)

    def _ami_banner(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.ports.ami), timeout=1) as conn:
                return conn.recv(100).startswith(b"Asterisk Call Manager/")
        except OSError:
            return False

    def ari_request(self, path: str) -> tuple[int, bytes]:
        """GET an ARI resource with the instance's credentials: ``(status, body)``."""
        secret = self.secrets
        token = base64.b64encode(f"{secret.ari_user}:{secret.ari_password}".encode()).decode()
        request = urllib.request.Request(
            f"{self.ari_url}/ari/{path.lstrip('/')}", headers={"Authorization": f"Basic {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def _ari_ok(self) -> bool:
        try:
            return self.ari_request("asterisk/info")[0] == 200
        except OSError:
            return False

    def _fully_booted(self) -> bool:
        try:
            return "fully booted" in self.cli("core waitfullybooted", timeout=5).lower()
        except AsteriskError:
            return False

    def _check_ports_free(self) -> None:
        ports = self.ports
        wanted = [("AMI", socket.SOCK_STREAM, "127.0.0.1", ports.ami),
                  ("HTTP/ARI", socket.SOCK_STREAM, "127.0.0.1", ports.http),
                  ("SIP", socket.SOCK_DGRAM, self.sip_address, ports.sip)]
        for label, kind, address, port in wanted:
            with socket.socket(socket.AF_INET, kind) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((address, port))
                except OSError as error:
                    raise AsteriskError(
                        f"Asterisk {self.name}: {label} port {address}:{port} is in use"
                        f" ({error.strerror}); stop whatever holds it or pick other ports"
                    ) from None

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.pid == pid:
                if self._process.poll() is not None:
                    return True
            elif not _alive(pid):
                return True
            time.sleep(0.05)
        return False


def _alive(pid: int) -> bool:
    """True for a live (not zombie) process whose command is asterisk."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    state = stat[stat.rindex(")") + 2:].split()[0]
    return name == "asterisk" and state not in ("Z", "X")


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except OSError as error:
        if error.errno != errno.ESRCH:
            raise
