"""A real Prometheus for the testbed: scrapes the controller and Asterisk, evaluates our rules.

Debian's ``prometheus`` binary runs in its own session on a free loopback port with its TSDB in
a work directory; the config is generated from the targets given (``job -> host:port``) with a
short scrape interval so a test sees fresh samples within seconds. The repository's rule files
(``docker/prometheus/alerts.yml``) are loaded too, so a broken rule fails at start, not in
production. ``start`` returns once Prometheus reports ready; ``stop`` always ends the process.

    server = start({"callctl": ["127.0.0.1:8080"], "asterisk": ["127.0.0.1:8088"]}, work_dir)
    try:
        server.query('callctl_up{component="ami"}')
    finally:
        server.stop()
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent
RULE_FILES = (REPO_DIR / "docker" / "prometheus" / "alerts.yml",)
PROMETHEUS_BINARY = "prometheus"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class PrometheusError(RuntimeError):
    """Prometheus could not start, or answered a query with an error; the message says why."""


def render_config(
    targets: Mapping[str, Sequence[str]], rule_files: Sequence[Path], interval_s: float
) -> dict[str, Any]:
    """prometheus.yml as data (JSON is valid YAML): one job per entry of ``targets``."""
    interval = f"{int(interval_s * 1000)}ms"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "scrape_timeout": interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics",
             "static_configs": [{"targets": list(addresses)}]}
            for job, addresses in targets.items()
        ],
    }


class PrometheusServer:
    """A started Prometheus; ``query`` evaluates PromQL at the current instant."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, work_dir: Path) -> None:
        self.process = process
        self.port = port
        self.work_dir = work_dir

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` of a success, PrometheusError otherwise."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as reply:
                body = json.load(reply)
        except urllib.error.HTTPError as error:  # 400/422: Prometheus explains in the body
            body = json.loads(error.read() or b"{}")
        except (urllib.error.URLError, OSError) as error:
            raise PrometheusError(f"Prometheus at {self.url} did not answer: {error}") from error
        if body.get("status") != "success":
            raise PrometheusError(
                f"{path} {params}: {body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query: the result series (``metric`` labels and ``value``), [] when none."""
        data = self.api("query", query=promql)
        result = data["result"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return list(result)

    def targets_up(self) -> dict[str, bool]:
        """Scrape pool (job) -> whether its last scrape succeeded, for every active target."""
        active = self.api("targets", state="active")["activeTargets"]
        return {t["scrapePool"]: t["health"] == "up" for t in active}

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its health and last evaluation error (if any)."""
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def log(self) -> str:
        path = self.work_dir / "prometheus.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(
    targets: Mapping[str, Sequence[str]],
    work_dir: Path,
    *,
    rule_files: Sequence[Path] = RULE_FILES,
    interval_s: float = 1.0,
    port: int | None = None,
) -> PrometheusServer:
    """Start Prometheus scraping ``targets`` (job -> ``host:port`` list) every ``interval_s``."""
    if shutil.which(PROMETHEUS_BINARY) is None:
        raise PrometheusError(f"{PROMETHEUS_BINARY} is not installed (Debian: apt install "
                              "prometheus)")
    work_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / "prometheus.yml"
    config.write_text(json.dumps(render_config(targets, rule_files, interval_s), indent=2))
    port = port or free_loopback_port()
    with (work_dir / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [PROMETHEUS_BINARY, f"--config.file={config}",
             f"--storage.tsdb.path={work_dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}",
             "--storage.tsdb.retention.time=1d", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=work_dir, start_new_session=True,
        )
    server = PrometheusServer(process, port, work_dir)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not server._ready():
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise PrometheusError(f"Prometheus did not become ready: {server.log()}")
        time.sleep(0.1)
    return server
