"""Inbound routing speed on the real Asterisk: how long a new call spends in the ARI app.

A test Asterisk instance (its own slot ports, like the integration tests) and the controller
in this process; sipp callers dial a number routed to a queue at 20 and 50 new calls per second
for a few seconds each. The router keeps ``routing_latency_s`` per call (StasisStart handled ->
the channel continued into the dialplan), and this process's CPU time per call is the
controller's (sipp and Asterisk are other processes). Target: p99 <= 20 ms at 50 calls/s.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import tempfile
import time
import tomllib
from collections.abc import Sized
from pathlib import Path

import tomli_w

from bench.common import Table, free_loopback_port
from controller.app import start
from controller.config import Config, load_config
from controller.logs import configure_logging
from testbed.asterisk import (
    CARRIER_IP,
    AsteriskInstance,
    ensure_root,
    test_ports,
    test_slot,
)
from testbed.controller_config import write_controller_config
from testbed.sipp import SippPool
from testbed.tone_pcap import write_tone_pcap

RATES = (20, 50)
SECONDS_PER_RATE = 8
HOLD_MS = "1500"  # callers hang up soon, so the queue stays small
INBOUND = """
[inbound]
external_trunk = "trunk"
[inbound.queues.bench]
members = ["1001"]
[inbound.numbers.5000]
queue = "bench"
"""


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _watch_routing(latencies: Sized, routed_at: list[float]) -> None:
    """Note when the router's count of routed calls grows (every 20 ms): the arrival rate the
    controller really saw, not only the rate sipp was asked for."""
    seen = 0
    while True:
        count = len(latencies)
        routed_at.extend([time.monotonic()] * (count - seen))
        seen = count
        await asyncio.sleep(0.02)


async def _measure(config: Config, pool: SippPool, pcap: Path) -> list[list[object]]:
    rows: list[list[object]] = []
    running = await start(config)
    try:
        router = running.controller.router
        deadline = time.monotonic() + 20
        while not (running.controller.ari.connected and running.controller.sync.synced):
            if time.monotonic() > deadline:
                raise RuntimeError("the controller did not connect to the bench Asterisk")
            await asyncio.sleep(0.1)
        for rate in RATES:
            calls = rate * SECONDS_PER_RATE
            router.routing_latency_s.clear()
            cpu_before = _cpu_s()
            # a short tone: sipp keeps a call open until its pcap has played, so the bundled
            # 8 s recording would cap the call rate sipp can sustain
            callers = pool.start(
                "tone_caller", local_ip=CARRIER_IP, uac=True, service="5000", calls=calls,
                rate=rate, values={"PCAP": str(pcap), "HOLD_MS": HOLD_MS},
                extra_args=["-l", "2000"],  # sipp's default cap on open calls is the rate x 3
            )
            routed_at: list[float] = []
            watcher = asyncio.create_task(_watch_routing(router.routing_latency_s, routed_at))
            # sipp ends once its last call is over: offered period + hold + margin bounds it
            stats = await asyncio.to_thread(callers.wait, SECONDS_PER_RATE + 15)
            cpu = _cpu_s() - cpu_before
            watcher.cancel()
            span = routed_at[-1] - routed_at[0] if len(routed_at) > 1 else 0.0
            latencies = [s * 1000 for s in router.routing_latency_s]
            rows.append([
                rate, stats.created, len(latencies), stats.successful,
                round(statistics.median(latencies), 2) if latencies else "-",
                round(_percentile(latencies, 0.99), 2) if latencies else "-",
                round(max(latencies), 2) if latencies else "-",
                round(cpu / max(len(latencies), 1) * 1000, 2),
                round((len(latencies) - 1) / span, 1) if span else "-",
            ])
    finally:
        await running.stop()
    return rows


def run() -> Table:
    ensure_root()
    slot = test_slot()
    with tempfile.TemporaryDirectory(prefix="callctl-bench-") as tmp:
        state = Path(tmp)
        instance = AsteriskInstance(f"bench{slot or ''}", state, test_ports(slot), fresh=True)
        write_controller_config(instance, state / "base.toml", http_port=free_loopback_port(),
                                store_path=state / "callctl.db")
        data = tomllib.loads((state / "base.toml").read_text()) | tomllib.loads(INBOUND)
        (state / "bench.toml").write_text(tomli_w.dumps(data))
        config = load_config(state / "bench.toml")
        # the controller logs as in production (JSON, info) but into a file, not over the table
        log_file = (state / "controller.log").open("w")
        configure_logging("info", stream=log_file)
        instance.inbound = config.inbound
        pool = SippPool(state / "sipp", instance.ports.sip, instance.ports.agent_phone,
                        instance.ports.trunk)
        instance.start()
        try:
            pcap = write_tone_pcap(state / "hello.pcap", 400.0, 0.5)
            rows = asyncio.run(_measure(config, pool, pcap))
        finally:
            pool.close()
            instance.stop()
            configure_logging("warning")
            log_file.close()
    return Table(
        title="inbound routing latency (StasisStart -> continued into the queue)",
        columns=["calls/s", "offered", "routed", "sipp ok", "p50 ms", "p99 ms", "max ms",
                 "cpu ms/call", "routed/s"],
        rows=rows,
        notes=[
            "controller in-process, Asterisk and sipp on the same 2 cores; target p99 <= 20 ms",
            "cpu ms/call: this process's user+system CPU over the run / calls routed",
            "routed/s: calls routed per second between the first and the last one routed",
        ],
    )
