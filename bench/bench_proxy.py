"""Call setup through Kamailio next to the direct figure, on the real stack.

sipp callers from the carrier's address dial the demo's queue number at 20 new calls per
second: once straight to one Asterisk (as `make run`), once to Kamailio in front of two nodes
(as `make cluster`). Setup is the caller's time from its INVITE leaving to the 200 OK arriving
(from sipp's message trace); both runs without a controller, so the dialplan's fallback answers
and queues the caller: what differs is the proxy's hop (authorisation checks, dispatcher,
record-route). The controller's own routing latency (bench_routing) comes on top of either,
as Kamailio is in front of Asterisk's Stasis app, not in it.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from bench.common import Table
from testbed.asterisk import (
    CARRIER_IP,
    AsteriskInstance,
    ensure_root,
    node_test_ports,
    test_ports,
    test_slot,
)
from testbed.cluster import Cluster
from testbed.kamailio import test_port as proxy_test_port
from testbed.sipp import SippPool

RATE = 20
SECONDS = 8
NUMBER = "5000"
HOLD_MS = "1000"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _calls(pool: SippPool) -> list[object]:
    caller = pool.start("caller", local_ip=CARRIER_IP, uac=True, service=NUMBER,
                        calls=RATE * SECONDS, rate=RATE, values={"HOLD_MS": HOLD_MS},
                        extra_args=["-l", "1000"])
    stats = caller.wait(SECONDS + 30)
    setups = [(answered - sent).total_seconds() * 1000
              for sent, answered in caller.call_setups().values() if answered is not None]
    if not setups:
        return [stats.created, 0, "-", "-", "-"]
    return [stats.created, len(setups), round(statistics.median(setups), 2),
            round(_percentile(setups, 0.99), 2), round(max(setups), 2)]


def _direct(state: Path, slot: int) -> list[object]:
    instance = AsteriskInstance(f"bench{slot or ''}", state, test_ports(slot), fresh=True)
    pool = SippPool(state / "sipp", instance.ports.sip, None, instance.ports.trunk)
    instance.start()
    try:
        return ["direct to one Asterisk", *_calls(pool)]
    finally:
        pool.close()
        instance.stop()


def _through_kamailio(state: Path, slot: int) -> list[object]:
    cluster = Cluster(f"bench-cluster{slot}", state, proxy_port=proxy_test_port(slot),
                      node_ports=[node_test_ports(slot, 1), node_test_ports(slot, 2)])
    pool = SippPool(state / "sipp", cluster.proxy_port, None, cluster.nodes[0].asterisk.ports.trunk)
    cluster.start()
    try:
        cluster.wait_nodes_active()
        return ["through Kamailio, 2 nodes", *_calls(pool)]
    finally:
        pool.close()
        cluster.stop()


def run() -> Table:
    ensure_root()
    slot = test_slot()
    with tempfile.TemporaryDirectory(prefix="callctl-bench-") as tmp:
        rows = [_direct(Path(tmp) / "direct", slot),
                _through_kamailio(Path(tmp) / "cluster", slot)]
    return Table(
        title=f"call setup, INVITE -> 200 OK at the caller ({RATE} calls/s for {SECONDS} s)",
        columns=["path", "offered", "answered", "p50 ms", "p99 ms", "max ms"],
        rows=rows,
        notes=["no controller: the dialplan fallback answers; Asterisk, Kamailio and sipp "
               "share the machine's 2 cores",
               "the controller's routing latency (bench_routing) adds to both rows alike"],
    )
