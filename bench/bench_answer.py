"""Answer to agent on the real stack: how fast a live answer reaches a ready agent.

A test Asterisk (this slot's ports), the controller as its own process (``callctl serve``, as a
site runs it) and a predictive campaign created, filled and started with ``callctl``. sipp is
the carrier's customers (CUSTOMERS: some answer after a short ring and talk TALK_MS, some are
busy, the rest ring until the dialer gives up) and the agents' phones (answer the nailed-up leg
and stay on it). The campaign runs RUN_S seconds, AMD off (with AMD on, the answer reaches the
controller only after AMD's verdict; bench_amd measures that part).

Two clocks, per live answer: the controller's own ``answer_to_agent_ms`` (its
``dialer.connected`` log: the customer's StasisStart to the bridge being made, the histogram
``callctl_dialer_answer_to_agent_seconds`` observes the same value) and Asterisk's (AMI
``Timestamp``s, read by a listener in this process: the customer channel's Newstate Up, which
is the carrier's 200 OK, to its BridgeEnter). Target: p99 under 50 ms; VICIdial reports 85-90 %
of live answers bridged within 0.1 s. Live answers that found no agent within 2 s are
abandoned (safe harbor): they count against the within-100 ms share, not in the percentiles.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import Table, free_loopback_port, slot_instance
from controller.config import Config
from testbed.ami_listener import ami_listener
from testbed.asterisk import AsteriskInstance
from testbed.controller_config import write_controller_config
from testbed.sipp import SippPool

RUN_S = 120
AGENTS = ("1001", "1002", "1003", "1004", "1005")  # every agent of the example site
TALK_MS = "3000"
# u < 0.6 answers after 1-3 s, u < 0.8 is busy, the rest ring until the 15 s ring timeout
CUSTOMERS = {"ANSWER_UPTO": "0.6", "BUSY_UPTO": "0.8", "RING_MIN_S": "1", "RING_MAX_S": "3",
             "TALK_MS": TALK_MS}
LEADS = 2000
WITHIN_MS = 100.0
CAMPAIGN = "answer-bench"
SETTINGS = f"""trunk = "trunk"
caller_id = "Callctl <5550100>"
dialing_mode = "predictive"
max_attempts = 1
ring_timeout_seconds = 15
line_cap = 20
calls_per_second = 10
agent_wrapup_seconds = 0
max_call_seconds = 30
[agents]
agent_ids = {json.dumps(list(AGENTS))}
[calling_hours]
start = 00:00:00
end = 23:59:59
[abandon]
recall_gap_hours = 0
safe_harbor_sound = "vm-nobodyavail"
"""


@dataclass
class _Channel:
    up: float | None = None  # Newstate Up, Asterisk's clock
    bridged: float | None = None  # first BridgeEnter
    bridge: str = ""  # the agent's bridge it entered
    left: float | None = None  # BridgeLeave


@dataclass
class AsteriskClock:
    """Customer channels' answer and bridge times from AMI events (their own Timestamp).

    Each agent sits in a bridge of its own for the whole campaign (the nailed-up leg), so a
    customer found its agent ready at the answer unless another customer was still in that
    bridge then: the wait for an agent to finish is pacing, not the connect path."""

    channels: dict[str, _Channel] = field(default_factory=dict)

    def on_event(self, event: Mapping[str, Any]) -> None:
        uniqueid = str(event.get("Uniqueid", ""))
        if not uniqueid or uniqueid.startswith("agent-"):
            return
        name, stamp = event.get("Event"), event.get("Timestamp")
        if stamp is None:
            return
        channel = self.channels.setdefault(uniqueid, _Channel())
        if name == "Newstate" and event.get("ChannelStateDesc") == "Up" and channel.up is None:
            channel.up = float(stamp)
        elif name == "BridgeEnter" and channel.bridged is None:
            channel.bridged, channel.bridge = float(stamp), str(event.get("BridgeUniqueid", ""))
        elif name == "BridgeLeave" and channel.left is None:
            channel.left = float(stamp)

    def answer_to_bridge_ms(self) -> dict[str, float]:
        return {uid: (c.bridged - c.up) * 1000 for uid, c in self.channels.items()
                if c.up is not None and c.bridged is not None}

    def waited_for_agent(self) -> set[str]:
        """Customers whose agent was still talking to another customer when they answered."""
        bridged = {uid: c for uid, c in self.channels.items()
                   if c.up is not None and c.bridged is not None}
        return {
            uid for uid, c in bridged.items()
            if any(other.bridge == c.bridge and other.bridged is not None
                   and c.up is not None and other.bridged < c.up
                   and (other.left is None or other.left > c.up)
                   for key, other in bridged.items() if key != uid)
        }


def quantile(values: Sequence[float], share: float) -> float:
    """The ``share`` quantile (0-1), linear between the nearest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_row(source: str, values_ms: Sequence[float], live: int) -> list[object]:
    """n, p50, p99, max, and the share of ``live`` answers bridged within WITHIN_MS."""
    if not values_ms:
        return [source, 0, "-", "-", "-", "-"]
    within = sum(v <= WITHIN_MS for v in values_ms)
    return [source, len(values_ms), round(quantile(values_ms, 0.5), 1),
            round(quantile(values_ms, 0.99), 1), round(max(values_ms), 1),
            round(within / live, 3) if live else "-"]


def _callctl(config_file: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli.main", "--config", str(config_file), *args],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"callctl {' '.join(args)} exited {result.returncode}:"
                           f" {result.stderr.strip()}")


def _healthy(config: Config) -> bool:
    url = f"http://{config.http.listen}:{config.http.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def _listen_and_run(config: Config, config_file: Path, instance: AsteriskInstance,
                          clock: AsteriskClock) -> None:
    async with ami_listener(config.ami, clock.on_event):
        await asyncio.to_thread(_callctl, config_file, "campaign", "start", CAMPAIGN)
        await asyncio.sleep(RUN_S)
        await asyncio.to_thread(_callctl, config_file, "campaign", "stop", CAMPAIGN)
        # calls in progress end (talk, ring timeout), then the agents' legs are released
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            count = await asyncio.to_thread(instance.cli, "core show channels count")
            if count.startswith("0 active channels"):
                break
            await asyncio.sleep(0.5)


def _log_events(log_file: Path, name: str) -> list[dict[str, Any]]:
    events = []
    for line in log_file.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == name:
                events.append(event)
    return events


def run() -> Table:
    with slot_instance("answer") as (state, instance):
        config_file = state / "controller.toml"
        config = write_controller_config(instance, config_file, http_port=free_loopback_port(),
                                         store_path=state / "callctl.db")
        (state / "campaign.toml").write_text(SETTINGS)
        # every lead in its local calling hours whatever the time of day
        (state / "leads.csv").write_text(
            "phone,timezone\n" + "".join(f"+1212333{i:04d},Etc/GMT\n" for i in range(LEADS)))
        pool = SippPool(state / "sipp", instance.ports.sip, instance.ports.agent_phone,
                        instance.ports.trunk)
        log_file = state / "controller.log"
        clock = AsteriskClock()
        instance.start()
        controller: subprocess.Popen[bytes] | None = None
        try:
            _callctl(config_file, "campaign", "create", CAMPAIGN, "--config",
                     str(state / "campaign.toml"))
            _callctl(config_file, "campaign", "import", CAMPAIGN, str(state / "leads.csv"))
            pool.agent_phones(RING_S="1", TALK_MS=str((RUN_S + 60) * 1000))
            pool.carrier(**CUSTOMERS)
            with log_file.open("wb") as log:
                controller = subprocess.Popen(
                    [sys.executable, "-m", "controller.cli.main", "--config", str(config_file),
                     "serve"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            deadline = time.monotonic() + 20
            while not _healthy(config):
                if time.monotonic() > deadline or controller.poll() is not None:
                    raise RuntimeError(f"the controller did not come up; see {log_file}")
                time.sleep(0.1)
            asyncio.run(_listen_and_run(config, config_file, instance, clock))
        finally:
            if controller is not None and controller.poll() is None:
                controller.terminate()
                try:
                    controller.wait(15)
                except subprocess.TimeoutExpired:
                    controller.kill()
                    controller.wait(5)
            pool.close()
            instance.stop()
        connected = {e["attempt_id"]: float(e["answer_to_agent_ms"])
                     for e in _log_events(log_file, "dialer.connected")}
        abandoned = len(_log_events(log_file, "dialer.abandoned"))
    return _table(connected, clock, abandoned)


def _table(controller_ms: Mapping[str, float], clock: AsteriskClock, abandoned: int) -> Table:
    asterisk_ms = clock.answer_to_bridge_ms()
    waited = clock.waited_for_agent()
    live = len(controller_ms) + abandoned
    both = sorted(controller_ms.keys() & asterisk_ms.keys())
    gaps = [asterisk_ms[a] - controller_ms[a] for a in both]
    examples = ", ".join(f"{controller_ms[a]:.1f}/{asterisk_ms[a]:.1f}" for a in both[:5])

    def rows(label: str, keep: Callable[[str], bool]) -> list[list[object]]:
        return [
            summary_row(f"{label}: controller", [v for k, v in controller_ms.items() if keep(k)],
                        live),
            summary_row(f"{label}: Asterisk", [v for k, v in asterisk_ms.items() if keep(k)],
                        live),
        ]

    return Table(
        title=f"answer to agent on the real stack ({RUN_S} s predictive campaign,"
              f" {len(AGENTS)} agents, AMD off)",
        columns=["calls", "bridged", "p50 ms", "p99 ms", "max ms",
                 f"of live answers within {WITHIN_MS:.0f} ms"],
        rows=[
            *rows("agent ready at answer", lambda a: a not in waited),
            *rows("all bridged", lambda a: True),
            *rows("waited for an agent", lambda a: a in waited),
        ],
        notes=[
            f"live answers {live}: bridged {len(controller_ms)} ({len(waited)} of them waited"
            f" for their agent to finish a call), abandoned (no agent within 2 s) {abandoned}",
            "controller: its answer_to_agent_ms (StasisStart -> bridged); Asterisk: AMI"
            " Timestamps, customer channel Newstate Up (200 OK) -> BridgeEnter",
            f"cross-check on {len(both)} calls: Asterisk minus controller, mean"
            f" {statistics.fmean(gaps) if gaps else 0:.1f} ms, max {max(gaps, default=0):.1f}"
            f" ms; first ones controller/Asterisk ms: {examples or '-'}",
            "target: p99 < 50 ms with an agent ready; VICIdial: 85-90 % of live answers"
            " within 100 ms",
        ],
    )
