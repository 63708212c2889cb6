"""``callctl node``: the site's nodes listed from the store, a retired one forgotten."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.cli.main import main
from controller.dialer.leads import Lead
from controller.dialer.repository import DialerRepository
from controller.dialer.settings import AgentGroup, CampaignSettings
from controller.inbound.repository import InboundCallRecord, InboundCallRepository
from controller.nodes.repository import NodeLeaseRepository
from controller.store import open_store
from controller.store.base import Database

from .test_recording_support import write_config

NOON_NY = datetime(2026, 6, 2, 16, 0, tzinfo=UTC)  # leads are claimed inside calling hours


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    return write_config(tmp_path, store_url=store_url)


def in_store(store_url: str, body: Callable[[Database], Awaitable[Any]]) -> None:
    async def run() -> None:
        store = await open_store(store_url)
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(run())


def site(store_url: str, *, node2_gone_for: float = 60.0) -> None:
    """node1 alive seating 1001; node2 gone ``node2_gone_for`` s ago, having seated 1002 and
    1003; node1 has an open call and an open attempt."""
    now = datetime.now(UTC)
    gone = now - timedelta(seconds=node2_gone_for)

    async def seed(db: Database) -> None:
        nodes, dialer = NodeLeaseRepository(db), DialerRepository(db)
        await nodes.renew("node1", now + timedelta(seconds=10))
        await nodes.renew("node2", gone)
        await dialer.renew_leases("node1", ["1001"], now)
        await dialer.renew_leases("node2", ["1002", "1003"], gone - timedelta(seconds=30))
        await InboundCallRepository(db).add_arrival(InboundCallRecord(
            call_id="in-1", channel="PJSIP/carrier-1", did="100", caller="+12125550199",
            arrived_at=now, queue="sales", node="node1"))
        settings = CampaignSettings(trunk="trunk", caller_id="+12125550100",
                                    agents=AgentGroup(queue="s"))
        await dialer.create_campaign("c1", settings, now)
        await dialer.change_state("c1", "start", now)
        await dialer.import_leads("c1", [Lead("+12125550101", timezone="America/New_York")],
                                  now)
        await dialer.claim("c1", 1, "node1", NOON_NY)

    in_store(store_url, seed)


def node(config: Path, *args: str) -> int:
    return main(["--config", str(config), "node", *args])


def listed(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    assert node(config, "list", "--json") == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def test_the_list_shows_each_lease_what_each_worker_seats_and_who_covers_the_gone_one(
    config: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    site(store_url)
    rows = listed(config, capsys)
    assert rows["node1"]["node_lease"]["alive"] and rows["node1"]["dialer_lease"]["alive"]
    assert not rows["node2"]["node_lease"]["alive"]
    assert not rows["node2"]["dialer_lease"]["alive"]
    assert (rows["node1"]["dialer_agents"], rows["node1"]["covers"]) == (["1001"],
                                                                        ["1002", "1003"])
    assert (rows["node2"]["dialer_agents"], rows["node2"]["covers"]) == (["1002", "1003"], [])
    assert (rows["node1"]["open_calls"], rows["node1"]["open_attempts"]) == (1, 1)
    assert node(config, "list") == 0
    header, first, second = capsys.readouterr().out.splitlines()
    assert header.split() == ["name", "node", "dialer", "dialer_agents", "covers", "open_calls",
                              "open_attempts"]
    assert first.split() == ["node1", "alive", "alive", "1001", "1002,1003", "1", "1"]
    assert second.split() == ["node2", "gone", "1m", "gone", "1m", "1002,1003", "-", "0", "0"]


def test_a_gone_node_is_forgotten_and_names_the_agents_nobody_seats_now(
    config: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    site(store_url)
    assert node(config, "forget", "node2") == 0
    out = capsys.readouterr().out
    assert "node 'node2' forgotten" in out
    assert "1002, 1003 are seated by no dialer worker now" in out
    rows = listed(config, capsys)
    assert list(rows) == ["node1"]
    assert rows["node1"]["covers"] == []


def test_an_alive_node_is_not_forgotten(
    config: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    site(store_url)
    assert node(config, "forget", "node1") == 1
    assert "node 'node1' not forgotten: node1's controller is alive (node lease until" in (
        capsys.readouterr().err)
    assert set(listed(config, capsys)) == {"node1", "node2"}


def test_a_gone_node_with_calls_left_to_settle_is_not_forgotten(
    config: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    site(store_url)
    in_store(store_url, lambda db: db.execute(
        "UPDATE inbound_calls SET node = 'node2' WHERE call_id = 'in-1'", {}))
    assert node(config, "forget", "node2", "--json") == 1
    assert "the store still has 1 open call(s) and 0 open attempt(s) of node2" in (
        capsys.readouterr().err)
    assert listed(config, capsys)["node1"]["covers"] == ["1002", "1003"]  # still covered


def test_an_unknown_node_is_bad_input_naming_the_known_ones(
    config: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    site(store_url)
    assert node(config, "forget", "node3") == 2
    assert "node 'node3': not in the store (known: node1, node2)" in capsys.readouterr().err


def test_a_forgotten_node_s_agents_another_worker_names_keep_their_seat(
    config: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    site(store_url)
    in_store(store_url, lambda db: DialerRepository(db).renew_leases(
        "node1", ["1001", "1002", "1003"], datetime.now(UTC)))
    assert node(config, "forget", "node2", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "forgotten": "node2", "agents_seated_by_no_worker": []}
