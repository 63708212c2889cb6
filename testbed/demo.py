"""``make demo``: a contact-center hour, compressed to minutes, on the real stack.

Starts the demo Asterisk, the controller (``callctl serve`` on the demo config, recording every
call) and a real Prometheus scraping both; logs agents 1001-1003 into the support queue, runs a
predictive campaign with agents 1004-1005, and drives real SIP traffic at it with
``testbed.traffic`` (Poisson callers, agents' phones, the campaign's customers). While it runs,
``callctl`` shows the queues, the agents and the campaign (with a progress bar). At the end it
prints one summary table whose numbers come from the store, next to the same numbers asked of
Prometheus (and the ``curl`` that asks), and writes them to ``summary.json``.

Everything started here is stopped in ``finally``, also on Ctrl-C or SIGTERM (a second Ctrl-C
during cleanup is ignored so cleanup can finish). ``--slot N`` runs a separate instance
(``demo-testN``) on ports of test slot N that the suite's own instance leaves free, so the
demo can be tested while the suite's instance runs.

    python -m testbed.demo --help
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli_w

from controller.config import Config, load_config
from controller.metrics.service_level import service_level_ratio
from testbed import prometheus
from testbed.asterisk import (
    REPO_DIR,
    AsteriskError,
    AsteriskInstance,
    demo_test_name,
    demo_test_ports,
)
from testbed.controller_config import write_controller_config
from testbed.signals import interrupt_on_ctrl_c_and_sigterm
from testbed.sipp import SippError
from testbed.traffic import (
    SippPorts,
    TrafficError,
    TrafficGenerator,
    TrafficProfile,
    add_profile_options,
    instance_ports,
    profile_from,
)

VAR_DIR = REPO_DIR / "var"
DEMO_HTTP_PORT = 8080
INBOUND_AGENTS = ("1001", "1002", "1003")  # the support queue's members
OUTBOUND_AGENTS = ("1004", "1005")
QUEUE = "support"
HEALTHY_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 20.0
BAR_WIDTH = 30


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and where to look."""


# ---- pure parts: the campaign, the summary ------------------------------------------------

def campaign_settings(profile: TrafficProfile, ring_timeout_s: int) -> dict[str, Any]:
    """The demo campaign: predictive, AMD on, dialing around the clock (it is a demo)."""
    return {
        "trunk": "trunk", "caller_id": "+12125550100", "default_region": "US",
        "dialing_mode": "predictive", "max_attempts": 1,
        "ring_timeout_seconds": ring_timeout_s, "line_cap": 6, "calls_per_second": 2.0,
        "agent_wrapup_seconds": 2,
        "agents": {"agent_ids": list(OUTBOUND_AGENTS)},
        "calling_hours": {"start": "00:00:00", "end": "23:59:59"},
        "abandon": {"target_percent": 3.0, "safe_harbor_sound": "vm-goodbye"},
        "amd": {"enabled": True, "action": "hangup"},
    }


def leads_csv(count: int) -> str:
    """``count`` distinct, valid New York numbers (the simulated carrier answers them all)."""
    rows = ["phone,name,timezone"]
    rows += [f"+1212555{1000 + i:04d},Customer {i},America/New_York" for i in range(count)]
    return "\n".join(rows) + "\n"


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = 0 if total <= 0 else min(width, round(width * done / total))
    share = 0.0 if total <= 0 else 100.0 * done / total
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({share:.0f}%)"


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Row:
    """One line of the summary: the store's value, Prometheus's, and the PromQL asked."""

    label: str
    store: float | None
    promql: str | None = None
    prom: float | None = None
    count: bool = True  # counts must agree exactly; averages and ratios to a tolerance

    def agrees(self) -> bool | None:
        if self.promql is None or self.store is None or self.prom is None:
            return None
        if self.count:
            return round(self.store) == round(self.prom)
        return abs(self.store - self.prom) <= max(0.02, 0.02 * abs(self.store))


def store_figures(
    calls: Sequence[dict[str, Any]], attempts: Sequence[dict[str, Any]],
    recordings: Sequence[dict[str, Any]], *, threshold_s: float, short_abandon_s: float,
    agents: int, elapsed_s: float,
) -> dict[str, float | None]:
    """Every summary figure from the store's rows (pure; rows are plain dicts)."""
    by_outcome: dict[str, int] = {}
    for call in calls:
        by_outcome[call["outcome"] or "open"] = by_outcome.get(call["outcome"] or "open", 0) + 1
    answered = [c for c in calls if c["outcome"] == "answered"]
    waits = [w for c in answered if (w := _seconds(c["queued_at"], c["answered_at"])) is not None]
    talks = [t for c in answered if (t := _seconds(c["answered_at"], c["ended_at"])) is not None]
    abandons = [w for c in calls if c["outcome"] == "abandoned" and c["queued_at"]
                and (w := _seconds(c["queued_at"], c["ended_at"])) is not None]
    results: dict[str, int] = {}
    for attempt in attempts:
        results[attempt["result"] or "open"] = results.get(attempt["result"] or "open", 0) + 1
    live = results.get("human", 0) + results.get("abandoned", 0)
    return {
        "offered": len(calls),
        **{outcome: by_outcome.get(outcome, 0)
           for outcome in ("answered", "abandoned", "overflowed", "failed", "open")},
        "service_level": service_level_ratio(waits, abandons, threshold_s=threshold_s,
                                             short_abandon_s=short_abandon_s),
        "asa_s": _mean(waits),
        "aht_talk_s": _mean(talks),
        "occupancy": sum(talks) / (agents * elapsed_s) if agents and elapsed_s > 0 else None,
        "attempts": len(attempts),
        **{f"dialer_{result}": results.get(result, 0)
           for result in ("human", "machine", "busy", "no_answer", "abandoned", "failed")},
        "dialer_answers": live + results.get("machine", 0),
        "abandon_ratio": results.get("abandoned", 0) / live if live else 0.0,
        "recordings": sum(1 for r in recordings if r["status"] == "complete"),
    }


def summary_rows(figures: dict[str, float | None], campaign: str,
                 ask: Callable[[str], float | None]) -> list[Row]:
    """The summary table: each store figure next to the PromQL that should give the same."""
    queue = f'queue="{QUEUE}"'
    wait = "callctl_queue_wait_seconds"

    def row(label: str, key: str, promql: str | None = None, count: bool = True) -> Row:
        return Row(label, figures[key], promql, ask(promql) if promql else None, count)

    def outcome(name: str) -> str:
        return f'sum(callctl_queue_calls_total{{outcome="{name}"}})'

    def result(name: str) -> str:
        return f'sum(callctl_dialer_calls_total{{campaign="{campaign}",result="{name}"}})'

    return [
        row("inbound calls offered", "offered", "sum(callctl_queue_calls_total)"),
        row("  answered", "answered", outcome("answered")),
        row("  abandoned", "abandoned", outcome("abandoned")),
        row("  overflowed", "overflowed", outcome("overflowed")),
        row("  failed", "failed", outcome("failed")),
        row(f"service level ({QUEUE})", "service_level",
            f"callctl_queue_service_level_ratio{{{queue}}}", count=False),
        row("ASA (s)", "asa_s", f'sum({wait}_sum{{outcome="answered"}})'
            f' / sum({wait}_count{{outcome="answered"}})', count=False),
        row("AHT talk (s)", "aht_talk_s", count=False),
        row("inbound agent occupancy", "occupancy", count=False),
        row("dialer attempts", "attempts",
            f'sum(callctl_dialer_calls_total{{campaign="{campaign}"}})'),
        row("  human", "dialer_human", result("human")),
        row("  machine", "dialer_machine", result("machine")),
        row("  busy", "dialer_busy", result("busy")),
        row("  no answer", "dialer_no_answer", result("no_answer")),
        row("  abandoned", "dialer_abandoned", result("abandoned")),
        row("  failed", "dialer_failed", result("failed")),
        row("dialer answers", "dialer_answers"),
        row("dialer abandon ratio", "abandon_ratio",
            f'callctl_dialer_abandon_ratio{{campaign="{campaign}",window="1h"}}', count=False),
        row("recordings made", "recordings", 'callctl_recordings_total{result="saved"}'),
    ]


def render_table(rows: Sequence[Row]) -> str:
    def show(value: float | None, count: bool) -> str:
        if value is None:
            return "-"
        return str(round(value)) if count else f"{value:.2f}"

    lines = [f"{'':28} {'store':>9} {'prometheus':>11}  agree"]
    for r in rows:
        agree = {True: "yes", False: "NO", None: ""}[r.agrees()]
        prom = show(r.prom, r.count) if r.promql else ""
        lines.append(f"{r.label:28} {show(r.store, r.count):>9} {prom:>11}  {agree}")
    return "\n".join(lines)


# ---- the run ----------------------------------------------------------------------------

class Demo:
    """The processes of one demo run; ``close`` stops whatever was started."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.slot: int | None = args.slot
        self.run_dir: Path = args.state_dir.resolve()
        self.profile = profile_from(args)
        if self.slot is None:
            self.instance = AsteriskInstance("demo", VAR_DIR / "asterisk",
                                             instance_ports(None), fresh=True)
        else:
            self.instance = AsteriskInstance(demo_test_name(self.slot), self.run_dir / "asterisk",
                                             demo_test_ports(self.slot), fresh=True)
        self.config_file = self.run_dir / "controller.toml"
        self.controller: subprocess.Popen[bytes] | None = None
        self.prometheus: prometheus.PrometheusServer | None = None
        self.traffic: TrafficGenerator | None = None
        self.config: Config | None = None
        self.started_at = 0.0

    # -- setup ------------------------------------------------------------------------------
    def prepare(self) -> Config:
        """A fresh run directory and the demo config, recording every call."""
        for part in ("callctl.db", "callctl.db-wal", "callctl.db-shm", "prometheus", "traffic",
                     "recordings"):
            path = self.run_dir / part
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        http_port = DEMO_HTTP_PORT if self.slot is None else prometheus.free_loopback_port()
        write_controller_config(self.instance, self.config_file, http_port=http_port,
                                store_path=self.run_dir / "callctl.db")
        data = tomllib.loads(self.config_file.read_text())
        data["recording"] = {
            "root": str(self.instance.monitor_dir / "callctl"),
            "asterisk_root": str(self.instance.spool_dir / "monitor" / "callctl"),
            "default": {"record": "all"},
        }
        self.config_file.write_text(tomli_w.dumps(data))
        self.config = load_config(self.config_file)
        (self.instance.monitor_dir / "callctl").mkdir(parents=True, exist_ok=True)
        return self.config

    def start(self) -> None:
        config = self.prepare()
        say(f"asterisk {self.instance.name}: SIP {self.instance.ports.sip}, AMI "
            f"{self.instance.ports.ami}, ARI {self.instance.ports.http}")
        self.instance.inbound = config.inbound
        self.instance.start()
        (self.instance.monitor_dir / "callctl").mkdir(parents=True, exist_ok=True)
        say(f"controller: http://{config.http.listen}:{config.http.port} "
            f"(log {self.run_dir / 'controller.log'})")
        with (self.run_dir / "controller.log").open("wb") as log:
            self.controller = subprocess.Popen(
                [sys.executable, "-m", "controller.cli.main", "--config",
                 str(self.config_file), "serve"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self._wait_healthy(config)
        self.prometheus = prometheus.start(
            {"callctl": [f"127.0.0.1:{config.http.port}"],
             "asterisk": [f"127.0.0.1:{self.instance.ports.http}"]},
            self.run_dir / "prometheus",
        )
        say(f"prometheus: {self.prometheus.url}")
        self.traffic = TrafficGenerator(self.instance.ports, self.run_dir / "traffic",
                                        self.profile, SippPorts.for_slot(self.slot))
        self.traffic.start(self.args.duration)
        for agent in INBOUND_AGENTS:
            self.callctl("agent", "login", agent)
        self._start_campaign()
        self.started_at = time.monotonic()

    def _wait_healthy(self, config: Config) -> None:
        url = f"http://{config.http.listen}:{config.http.port}/healthz"
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        while True:
            assert self.controller is not None
            if self.controller.poll() is not None:
                raise DemoError(f"the controller exited ({self.controller.returncode}); see "
                                f"{self.run_dir / 'controller.log'}")
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise DemoError(f"the controller was not healthy within {HEALTHY_TIMEOUT_S} s")
            time.sleep(0.3)

    def _start_campaign(self) -> None:
        settings = self.run_dir / "campaign.toml"
        settings.write_text(tomli_w.dumps(campaign_settings(self.profile, 15)))
        leads = self.run_dir / "leads.csv"
        leads.write_text(leads_csv(self.args.leads))
        name = self.profile.campaign
        self.callctl("campaign", "create", name, "--config", str(settings))
        self.callctl("campaign", "import", name, str(leads))
        self.callctl("campaign", "start", name)

    def callctl(self, *args: str, quiet: bool = True) -> str:
        """Run one ``callctl`` command against the demo config; its output."""
        result = subprocess.run(
            [sys.executable, "-m", "controller.cli.main", "--config", str(self.config_file),
             *args], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0:
            raise DemoError(f"callctl {' '.join(args)}: {(result.stderr or result.stdout).strip()}")
        if not quiet:
            print(result.stdout, end="")
        return result.stdout

    # -- while it runs ----------------------------------------------------------------------
    def run(self) -> None:
        assert self.traffic is not None
        deadline = self.started_at + self.args.duration
        next_status = self.started_at
        while time.monotonic() < deadline:
            self.traffic.tick()
            if time.monotonic() >= next_status:
                self.status()
                next_status = time.monotonic() + self.args.status_interval
            time.sleep(0.2)
        say("traffic over: no new callers, campaign stopped; letting calls finish")
        self.traffic.stop_arrivals()
        self.callctl("campaign", "stop", self.profile.campaign)
        drain_end = time.monotonic() + self.args.drain
        while self.traffic.active_callers() and time.monotonic() < drain_end:
            time.sleep(0.5)
        self.instance.cli("channel request hangup all")
        self._wait_settled()

    def status(self) -> None:
        assert self.traffic is not None
        elapsed = time.monotonic() - self.started_at
        print(f"\n=== {elapsed:5.0f} s / {self.args.duration:.0f} s   callers placed "
              f"{self.traffic.counts.callers_started} of ~{self.traffic.callers_planned} ===")
        try:
            self.callctl("queue", "status", quiet=False)
            self.callctl("agent", "list", quiet=False)
            report = json.loads(self.callctl("campaign", "status", self.profile.campaign,
                                             "--json"))
        except DemoError as error:  # status is informative: a hiccup must not end the demo
            print(f"(status unavailable: {error})")
            return
        leads = report["leads"]
        done = leads.get("total", 0) - leads.get("ready", 0)
        attempts = ", ".join(f"{k} {v}" for k, v in report["attempts"].items())
        print(f"campaign {report['campaign']} ({report['state']}) "
              f"{progress_bar(done, leads.get('total', 0))}  attempts: {attempts or 'none'}")
        sys.stdout.flush()

    def _store_rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with sqlite3.connect(self.run_dir / "callctl.db", timeout=10) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(sql, params)]

    def _wait_settled(self) -> None:
        """Until every call and attempt has its outcome in the store, and Prometheus saw it."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            open_calls = self._store_rows(
                "SELECT COUNT(*) AS n FROM inbound_calls WHERE outcome IS NULL", {})[0]["n"]
            open_attempts = self._store_rows(
                "SELECT COUNT(*) AS n FROM attempts WHERE state = 'dialing'", {})[0]["n"]
            if not open_calls and not open_attempts:
                break
            time.sleep(0.5)
        time.sleep(3)  # three scrapes at 1 s: Prometheus holds the final counters

    # -- the end ----------------------------------------------------------------------------
    def summary(self) -> tuple[list[Row], str]:
        assert self.config is not None and self.prometheus is not None
        queue_cfg = self.config.inbound.queues[QUEUE]
        figures = store_figures(
            self._store_rows("SELECT * FROM inbound_calls WHERE did = :did",
                             {"did": self.profile.number}),
            self._store_rows("SELECT * FROM attempts WHERE campaign = :c",
                             {"c": self.profile.campaign}),
            self._store_rows("SELECT status FROM recordings", {}),
            threshold_s=queue_cfg.service_level, short_abandon_s=queue_cfg.short_abandon,
            agents=len(INBOUND_AGENTS), elapsed_s=time.monotonic() - self.started_at,
        )
        server = self.prometheus

        def ask(promql: str) -> float | None:
            try:
                series = server.query(promql)
            except prometheus.PrometheusError:
                return None
            return float(series[0]["value"][1]) if series else None

        rows = summary_rows(figures, self.profile.campaign, ask)
        example = rows[0].promql or ""
        curl = (f"curl -s '{server.url}/api/v1/query?"
                f"{urllib.parse.urlencode({'query': example})}'")
        (self.run_dir / "summary.json").write_text(json.dumps(
            {"rows": [r.__dict__ | {"agrees": r.agrees()} for r in rows],
             "traffic": self.traffic.counts.__dict__ if self.traffic else None,
             "curl": curl}, indent=2))
        return rows, curl

    def close(self) -> None:
        """Stop everything that was started, in reverse order; never raises."""
        steps: list[tuple[str, Callable[[], None]]] = [
            ("traffic", lambda: self.traffic.stop() if self.traffic else None),
            ("controller", self._stop_controller),
            ("prometheus", lambda: self.prometheus.stop() if self.prometheus else None),
            ("asterisk", self.instance.stop),
        ]
        for what, step in steps:
            began = time.monotonic()
            try:
                step()
            except (OSError, AsteriskError, SippError, subprocess.SubprocessError) as error:
                print(f"demo: stopping {what} failed: {error}", file=sys.stderr)
            say(f"{what} stopped ({time.monotonic() - began:.1f} s)")

    def _stop_controller(self) -> None:
        process = self.controller
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m testbed.demo",
        description="A contact-center hour on the real stack: Asterisk, the controller, "
        "Prometheus and sipp traffic (inbound queue with overflow, predictive campaign), "
        "live status, then a summary table checked against the store and Prometheus.",
    )
    parser.add_argument("--duration", type=float, default=180.0, metavar="S",
                        help="seconds of traffic (default 180)")
    parser.add_argument("--drain", type=float, default=20.0, metavar="S",
                        help="seconds to let calls finish before hanging up (default 20)")
    parser.add_argument("--status-interval", type=float, default=15.0, metavar="S",
                        help="seconds between live status prints (default 15)")
    parser.add_argument("--leads", type=int, default=300, help="campaign leads (default 300)")
    parser.add_argument("--slot", type=int, choices=range(8), metavar="N",
                        help="run instance demo-testN beside test slot N's instance (tests)")
    parser.add_argument("--state-dir", type=Path, default=VAR_DIR / "demo",
                        help="store, logs, Prometheus data, sipp traces (default var/demo)")
    add_profile_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    interrupt_on_ctrl_c_and_sigterm()
    # a run that does not stop can be asked where it is stuck: every thread's stack to stderr
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        demo = Demo(args)
    except TrafficError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 2
    status = 0
    try:
        demo.start()
        demo.run()
        rows, curl = demo.summary()
        print("\n=== summary ===")
        print(render_table(rows))
        print(f"\nthe same from Prometheus: {curl}\n  -> {rows[0].prom}"
              " (Prometheus stops with the demo)")
        print(f"details: {demo.run_dir / 'summary.json'}")
    except KeyboardInterrupt:
        say("interrupted: stopping everything")
        status = 130
    except (DemoError, AsteriskError, SippError, TrafficError, prometheus.PrometheusError,
            sqlite3.Error) as error:
        print(f"demo: {error}", file=sys.stderr)
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.close()
    say("stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
