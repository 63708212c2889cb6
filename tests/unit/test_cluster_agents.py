"""``make cluster`` gives each node's dialer worker its own agents: none is seated by two."""

from __future__ import annotations

from pathlib import Path

from controller.config import load_config
from testbed.asterisk import node_test_ports
from testbed.cluster import Cluster


def test_each_node_s_worker_gets_its_own_share_of_the_site_s_agents(tmp_path: Path) -> None:
    cluster = Cluster("shares", tmp_path, proxy_port=19999,
                      node_ports=[node_test_ports(0, 1), node_test_ports(0, 2)])
    shares = cluster.share_dialer_agents()
    seated = [load_config(node.controller_config).dialer.agents for node in cluster.nodes]
    everyone = list(load_config(cluster.nodes[0].controller_config).agent_accounts)
    assert seated == shares
    assert sorted(a for share in shares for a in share) == sorted(everyone)
    assert not set(shares[0]) & set(shares[1])
    assert all(shares)
