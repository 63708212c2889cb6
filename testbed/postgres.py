"""A private PostgreSQL cluster for tests and benchmarks: initdb, start, databases, stop.

Never the system service: each cluster lives in its own directory under ``var/`` (data, socket
and log, all owned by the ``postgres`` user, since initdb refuses to run as root) and listens
on 127.0.0.1 only, on a port of its test slot. ``start`` always begins from a fresh initdb
(about 0.7 s), after stopping a postmaster a crashed earlier run may have left in that
directory; ``stop`` is ``pg_ctl stop -m fast`` (``smart`` would wait for every pooled
connection) and removes the directory. Authentication is ``trust``: a throwaway cluster on
loopback, for tests and benchmarks.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import psycopg
from psycopg import sql

from testbed.asterisk import REPO_DIR

SERVER_USER = "postgres"
SUPERUSER = "postgres"
BIN_ENV = "CALLCTL_PG_BIN"
# Debian keeps the server programs of each major version off PATH, in its own directory.
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_S = 30
# Durability is pointless for a cluster deleted after the run, and fsync per commit and per
# CREATE DATABASE is most of a test's database time.
TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresError(RuntimeError):
    """The cluster could not be created, started, reached or stopped; the message says why."""


def test_port(slot: int) -> int:
    """The test suite's cluster of a test slot: 100 apart like the slot's Asterisk ports, and
    clear of them (those end in 38, 60, 70, 80, 88, 10, 20 and 30)."""
    return 15432 + 100 * slot


def bench_port(slot: int) -> int:
    """The benchmarks' cluster, beside the suite's own in the same slot."""
    return 15442 + 100 * slot


def server_bin_dir() -> Path:
    """Where initdb and pg_ctl are: ``CALLCTL_PG_BIN``, else Debian's newest installed major."""
    if os.environ.get(BIN_ENV):
        return Path(os.environ[BIN_ENV])
    found = sorted(
        (Path(p) for p in glob.glob(DEBIAN_BIN_GLOB) if (Path(p) / "initdb").exists()),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if not found:
        raise PostgresError(
            f"no PostgreSQL server found ({DEBIAN_BIN_GLOB}/initdb): run `make setup`"
            f" (installs Debian's postgresql), or point {BIN_ENV} at its bin directory"
        )
    return found[-1]


class PostgresCluster:
    """One cluster in ``directory`` on ``127.0.0.1:port``; ``url(db)`` is a store URL."""

    def __init__(
        self, directory: Path, port: int, settings: Mapping[str, str] | None = None
    ) -> None:
        self.directory = directory.absolute()
        self.port = port
        self.settings = dict(settings or {})
        self.data_dir = self.directory / "data"
        self.socket_dir = self.directory / "run"
        self.log_file = self.directory / "postgres.log"
        self._bin = server_bin_dir()
        self._as_server_user = os.geteuid() == 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """A fresh cluster, running and accepting connections when this returns."""
        self.stop_leftover()
        for path in (self.directory, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            self._own(path)
        self._run(
            "initdb", "-D", str(self.data_dir), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
            "--locale=C.UTF-8", "--no-sync", "--no-instructions",
        )
        self.start_server()

    def start_server(self) -> None:
        """Start the server on this cluster's data as it was left (after ``stop_server``)."""
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-p {self.port}",
            f"-c unix_socket_directories={self.socket_dir}",
            *(f"-c {key}={value}" for key, value in self.settings.items()),
        ]
        try:
            self._run(
                "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
                "-t", str(START_TIMEOUT_S), "-o", " ".join(options),
            )
        except PostgresError as error:
            raise PostgresError(f"{error}\n--- {self.log_file} ---\n{self.log_tail()}") from None

    def stop_server(self) -> None:
        """Stop the server (fast: every open session is cut) and keep its data: an outage
        lasting until ``start_server``."""
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")

    def is_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        status = subprocess.run(
            self._command("pg_ctl", "status", "-D", str(self.data_dir)),
            capture_output=True, check=False,
        )
        return status.returncode == 0

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every open session is cut, the data stays."""
        self._run("pg_ctl", "restart", "-D", str(self.data_dir), "-m", "fast", "-w",
                  "-t", str(START_TIMEOUT_S), "-l", str(self.log_file))

    def stop(self) -> None:
        """Stop the server (fast: open sessions are rolled back) and delete the cluster."""
        if self.is_running():
            self.stop_server()
        shutil.rmtree(self.directory, ignore_errors=True)

    def create_database(self, name: str, template: str = "template0") -> str:
        """A new database, a copy of ``template`` (empty by default); returns its store URL."""
        self.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)))
        return self.url(name)

    def execute(self, statement: sql.SQL | sql.Composed) -> None:
        """Run one statement as the superuser on the ``postgres`` database (autocommit)."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(statement)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop_leftover(self) -> None:
        """Stop a postmaster a killed run left here (it holds the port) and delete it all."""
        if self.is_running():
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
        shutil.rmtree(self.directory, ignore_errors=True)

    def _own(self, path: Path) -> None:
        if self._as_server_user:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self._bin / program), *args]
        if self._as_server_user:
            return ["runuser", "-u", SERVER_USER, "--", *command]
        return command

    def _run(self, program: str, *args: str) -> None:
        command: Sequence[str] = self._command(program, *args)
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, check=False, cwd=self.directory,
                timeout=START_TIMEOUT_S + 10,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise PostgresError(f"{program} failed: {error}") from None
        if done.returncode != 0:
            raise PostgresError(
                f"{program} exited {done.returncode}: {(done.stderr or done.stdout).strip()}"
            )


def session_cluster(
    kind: str, preferred_port: int, settings: Mapping[str, str] | None = None
) -> PostgresCluster:
    """A cluster of this process, in the checkout's ``var/postgres-KIND-PID``.

    Unit tests run without a test slot, so several sessions (engineers, CI jobs) can want one
    slot's port and directory at once: the directory is per process, and the port is
    ``preferred_port`` unless something holds it, then any free one. Clusters left by
    processes that are gone (killed before their cleanup) are stopped and removed first.
    """
    var = REPO_DIR / "var"
    for old in var.glob("postgres-*-*"):
        owner = old.name.rsplit("-", 1)[-1]
        if owner.isdigit() and not _process_exists(int(owner)):
            PostgresCluster(old, preferred_port).stop_leftover()
    return PostgresCluster(
        var / f"postgres-{kind}-{os.getpid()}", _free_port(preferred_port), settings
    )


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port(preferred: int) -> int:
    with socket.socket() as probe:
        # as the server binds: a port whose old connections linger in TIME_WAIT is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
