"""A site of several nodes on one machine: Kamailio in front, two Asterisk nodes behind it.

``Cluster`` renders every part from the site config the testbed always uses
(``controller.example.toml``, with ports and folders changed): each node's Asterisk through
``callctl render-conf``'s code with a ``[site.proxy]`` section (SIP only from the proxy,
agents and the carrier reached through it), and Kamailio through ``render-conf --kamailio``,
all from one secrets store, so an agent's generated password works at the proxy. Each node has
its own loopback address (127.0.1.N) and its own controller config (its AMI and ARI, its
``dialer.worker_id``), all on one store.

``python -m testbed.cluster`` (``make cluster``) runs the whole site for a newcomer: a private
PostgreSQL, Kamailio on 127.0.0.1:5060, two nodes, two controllers (APIs on 8080 and 8081),
a Prometheus scraping both controllers and both nodes with the shipped rules (so the
dashboards' expressions can be tried on a site), prints the agents' accounts and runs until
Ctrl-C, then stops everything.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from controller.config import load_config
from testbed import prometheus
from testbed.asterisk import (
    DEMO_PORTS,
    REPO_DIR,
    AsteriskInstance,
    Ports,
    ensure_root,
    node_address,
)
from testbed.controller_config import write_controller_config
from testbed.kamailio import KamailioInstance
from testbed.postgres import PostgresCluster, session_cluster
from testbed.signals import interrupt_on_ctrl_c_and_sigterm

NODES = 2
HEALTH_TIMEOUT = 30.0
# the demo's nodes: SIP on 5060 of their own addresses, AMI and ARI side by side
CLUSTER_DEMO_PORTS = (
    DEMO_PORTS,
    Ports(sip=5060, ami=5039, http=8090, rtp_start=11000, rtp_end=11999, trunk=5070),
)
PROXY_PORT = 5060
API_PORTS = (8080, 8081)


@dataclass(frozen=True)
class ClusterNode:
    """One node: its Asterisk and the controller config wired to it."""

    asterisk: AsteriskInstance
    controller_config: Path
    worker_id: str

    @property
    def sip(self) -> str:
        return f"{self.asterisk.sip_address}:{self.asterisk.ports.sip}"


class Cluster:
    """Kamailio on ``127.0.0.1:proxy_port`` and one node per entry of ``node_ports``, whose
    controller's API is the same entry of ``api_ports`` (default: the port after the node's
    ARI port, inside its slot's band like the node's own ports). ``dialer_agents``, one entry
    per node, are the agents each node's dialer worker seats (default: every campaign agent);
    ``more_agents`` are agents the site has beyond the example config's."""

    def __init__(
        self, name: str, state_dir: Path, *, proxy_port: int, node_ports: Sequence[Ports],
        api_ports: Sequence[int] = (), store_url: str | None = None,
        dialer_agents: Sequence[Sequence[str]] = (), more_agents: Sequence[str] = (),
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.proxy_port = proxy_port
        secrets = self.state_dir / "secrets.json"
        addresses = [node_address(number) for number in range(1, len(node_ports) + 1)]
        proxy = {"address": "127.0.0.1", "port": proxy_port,
                 "nodes": [f"{address}:{ports.sip}"
                           for address, ports in zip(addresses, node_ports, strict=True)]}
        api_ports = api_ports or [ports.http + 1 for ports in node_ports]
        self.nodes: list[ClusterNode] = []
        for number, (address, ports) in enumerate(zip(addresses, node_ports, strict=True), 1):
            node_dir = self.state_dir / f"node{number}"
            asterisk = AsteriskInstance(f"{name}-node{number}", node_dir, ports, fresh=True,
                                        sip_address=address, secrets_file=secrets, proxy=proxy,
                                        more_agents=more_agents)
            worker_id = f"{name}-node{number}"
            config_file = node_dir / "controller.toml"
            write_controller_config(asterisk, config_file, http_port=api_ports[number - 1],
                                    store_path=node_dir / "callctl.db", store_url=store_url,
                                    worker_id=worker_id,
                                    dialer_agents=dialer_agents[number - 1] if dialer_agents
                                    else ())
            self.nodes.append(ClusterNode(asterisk, config_file, worker_id))
        self.kamailio = KamailioInstance(self.nodes[0].controller_config,
                                         self.state_dir / "kamailio")

    @property
    def proxy(self) -> tuple[str, int]:
        return ("127.0.0.1", self.proxy_port)

    def start(self) -> None:
        """Every node, then the proxy (its first probes then find the nodes up)."""
        ensure_root()
        try:
            for node in self.nodes:
                node.asterisk.start()
            self.kamailio.directory.mkdir(parents=True, exist_ok=True)
            self.kamailio.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.kamailio.stop()
        for node in self.nodes:
            node.asterisk.stop()

    def share_dialer_agents(self) -> list[tuple[str, ...]]:
        """Give each node's dialer worker its own share of the site's agents (round robin) in
        its controller config (``dialer.agents``): a worker cannot see another's agent legs,
        so two seating one agent in a campaign would offer it two calls. Returns the shares."""
        agents = list(load_config(self.nodes[0].controller_config).agent_accounts)
        shares = [tuple(agents[n::len(self.nodes)]) for n in range(len(self.nodes))]
        for node, share in zip(self.nodes, shares, strict=True):
            data = tomllib.loads(node.controller_config.read_text())
            data["dialer"] = {**data.get("dialer", {}), "agents": list(share)}
            node.controller_config.write_text(tomli_w.dumps(data))
        return shares

    def wait_nodes_active(self, timeout: float = 10.0) -> None:
        """Until the proxy's probes have found every node up."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.kamailio.dispatcher()
            if len(states) == len(self.nodes) and all(flags.startswith("A")
                                                       for flags in states.values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"nodes not all active after {timeout} s: {states}")
            time.sleep(0.1)


# ---- make cluster ----------------------------------------------------------------------------

def _wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the controller on :{port} exited ({process.returncode})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.2)
    raise RuntimeError(f"the controller on :{port} is not healthy after {HEALTH_TIMEOUT} s")


def run_demo(var: Path) -> None:
    database = session_cluster("cluster", 5432)
    controllers: list[subprocess.Popen[bytes]] = []
    cluster: Cluster | None = None
    server: prometheus.PrometheusServer | None = None
    try:
        database.start()
        store_url = database.create_database("callctl")
        cluster = Cluster("cluster", var / "cluster", proxy_port=PROXY_PORT,
                          node_ports=CLUSTER_DEMO_PORTS, store_url=store_url,
                          api_ports=API_PORTS)
        shares = cluster.share_dialer_agents()
        cluster.start()
        callctl = Path(sys.executable).with_name("callctl")
        for node, port in zip(cluster.nodes, API_PORTS, strict=True):
            log = (node.controller_config.parent / "controller.log").open("ab")
            controllers.append(subprocess.Popen(
                [str(callctl), "--config", str(node.controller_config), "serve"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
            _wait_healthy(port, controllers[-1])
        cluster.wait_nodes_active()
        server = prometheus.start(
            {"callctl": [f"127.0.0.1:{port}" for port in API_PORTS],
             "asterisk": [f"127.0.0.1:{ports.http}" for ports in CLUSTER_DEMO_PORTS]},
            var / "cluster" / "prometheus")
        _print_site(cluster, database, shares)
        print(f"prometheus (both controllers and nodes, the shipped rules): {server.url}")
        while all(process.poll() is None for process in controllers):
            time.sleep(1)
        print("a controller exited: stopping the cluster", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping the cluster")
    finally:
        # a second Ctrl-C must not cut the cleanup short and leave parts running
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for process in controllers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in controllers:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if server is not None:
            server.stop()
        if cluster is not None:
            cluster.stop()
        database.stop()


def _print_site(
    cluster: Cluster, database: PostgresCluster, shares: Sequence[Sequence[str]]
) -> None:
    node = cluster.nodes[0].asterisk
    proxy = f"{cluster.proxy[0]}:{cluster.proxy[1]}"
    print(f"SIP (phones and carrier): {proxy} (Kamailio)")
    for number, (member, port, share) in enumerate(
        zip(cluster.nodes, API_PORTS, shares, strict=True), 1
    ):
        print(f"node {number}: Asterisk SIP {member.sip} (from the proxy only), "
              f"controller API http://127.0.0.1:{port} (worker {member.worker_id}, "
              f"seats campaign agents {', '.join(share)})")
    print(f"store: PostgreSQL on 127.0.0.1:{database.port}")
    print(f"API token: {node.secrets.api_token}")
    print(f"agent accounts (register at {proxy}, realm of the proxy):")
    for agent, password in node.secrets.agent_passwords.items():
        print(f"  {agent} password {password}")
    print("Ctrl-C stops everything")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m testbed.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--var", type=Path, default=REPO_DIR / "var",
                        help="where the cluster's state goes (default: the checkout's var/)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root (Asterisk's chroot, Kamailio on port 5060)")
    interrupt_on_ctrl_c_and_sigterm()
    run_demo(args.var)
    return 0


if __name__ == "__main__":
    sys.exit(main())
