"""NodeService on a real store (SQLite and PostgreSQL) with the real router and model: what
it does with the open calls of a lost node, of a restarted Asterisk, and of a node whose
controller's lease ran out; each call counted once as ``node_lost``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from controller.asterisk.events import parse_ami
from controller.config import NodeConfig
from controller.inbound.config import InboundConfig
from controller.inbound.repository import InboundCallRecord, InboundCallRepository
from controller.inbound.router import InboundCall, InboundRouter
from controller.metrics.registry import Metrics, SnapshotProviders
from controller.metrics.snapshot import ComponentUp
from controller.nodes.repository import NodeLeaseRepository
from controller.nodes.service import NodeService
from controller.state.model import LiveModel
from controller.store.backlog import WriteBacklog
from controller.store.base import Database, to_iso

T0 = datetime(2026, 12, 2, 16, 0, tzinfo=UTC).timestamp()
STARTED = {"CoreStartupDate": "2026-12-02", "CoreStartupTime": "15:00:00"}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class FakeAmi:
    def __init__(self) -> None:
        self.connected = True
        self.status = dict(STARTED)

    async def action(self, name: str, **_params: Any) -> dict[str, str]:
        assert name == "CoreStatus"
        return self.status


async def _components() -> ComponentUp:
    return ComponentUp(ami=True, ari=True, store=True)


class Site:
    def __init__(self, store: Database) -> None:
        self.store = store
        self.clock = Clock()
        self.ami = FakeAmi()
        self.model = LiveModel(clock=self.clock)
        self.metrics = Metrics(SnapshotProviders(components=_components))
        self.calls = InboundCallRepository(store)
        self.leases = NodeLeaseRepository(store)
        self.router = InboundRouter(
            InboundConfig(), self.ami, None, self.model, store, self.metrics,  # type: ignore[arg-type]
            None, WriteBacklog(), "n1", clock=self.clock,  # type: ignore[arg-type]
        )
        self.service = NodeService(
            "n1", NodeConfig(lost_after=5.0, lease=10.0), self.ami,  # type: ignore[arg-type]
            self.model, self.router, self.calls, self.leases, self.metrics, clock=self.clock,
        )

    def follow(self, call_id: str, **fields: Any) -> None:
        """A call the router follows, waiting in queue support since T0."""
        self.router.calls[call_id] = InboundCall(
            call_id=call_id, channel=f"PJSIP/trunk-{call_id}", did="5000", caller="+1555",
            arrived_at=T0, queue="support", queue_joined_at=T0, queued_at=T0, node="n1",
            **fields,
        )

    def live(self, call_id: str) -> None:
        self.model.apply(parse_ami({"Event": "Newchannel", "Uniqueid": call_id,
                                    "Channel": f"PJSIP/trunk-{call_id}", "Linkedid": call_id}))

    async def stored(self, call_id: str, node: str = "n1") -> None:
        await self.calls.add_arrival(InboundCallRecord(
            call_id, f"PJSIP/trunk-{call_id}", "5000", "+1555",
            datetime.fromtimestamp(T0, UTC), queue="support", node=node))

    async def rows(self) -> dict[str, tuple[str | None, str | None]]:
        """call id -> (outcome, reason), once the router's writes have landed."""
        for _ in range(100):
            if not self.router._tasks._tasks:  # the writes it spawned
                break
            await asyncio.sleep(0.01)
        rows = await self.store.fetchall("SELECT call_id, outcome, reason FROM inbound_calls")
        return {row["call_id"]: (row["outcome"], row["reason"]) for row in rows}

    def counted(self, outcome: str) -> float:
        return self.metrics.registry.get_sample_value(
            "callctl_queue_calls_total", {"queue": "support", "outcome": outcome}) or 0.0


@pytest.fixture
async def site(store: Database) -> Site:
    return Site(store)


async def test_an_ami_connection_down_lost_after_ends_every_open_call_once(site: Site) -> None:
    await site.service.on_resync()  # first sight: nothing open yet
    site.follow("waiting")
    site.follow("talking", outcome="answered", answered_at=T0 + 3, agent_id="1001")
    site.live("waiting")  # the model keeps the channels of a connection that is down
    await site.stored("waiting")
    await site.stored("earlier")  # an earlier run's, only in the store
    await site.stored("elsewhere", node="n2")  # n2's controller holds no lease: not ours

    site.ami.connected = False
    site.clock.now = T0 + 10
    await site.service.tick()
    site.clock.now = T0 + 14.9
    await site.service.tick()
    assert site.router.calls.keys() == {"waiting", "talking"}
    site.clock.now = T0 + 15
    await site.service.tick()
    site.clock.now = T0 + 20
    await site.service.tick()  # declared once

    rows = await site.rows()
    assert site.router.calls == {}
    assert rows["waiting"] == ("node_lost", "AMI down for 5.0 s")
    assert rows["talking"] == ("answered", "AMI down for 5.0 s")
    assert rows["earlier"] == ("node_lost", "AMI down for 5.0 s")
    assert rows["elsewhere"] == (None, None)
    assert site.counted("node_lost") == 2  # the answered call was counted at its answer
    # the model still lists the lost caller until a resync: the ticker must not adopt it again
    site.model.apply(parse_ami({"Event": "QueueCallerJoin", "Queue": "support",
                                "Uniqueid": "waiting", "Channel": "PJSIP/trunk-waiting",
                                "Linkedid": "waiting", "Position": "1", "Count": "1"}))
    assert site.router._adopt("waiting", "support") is None
    assert "waiting" not in site.router.calls


async def test_back_to_a_restarted_asterisk_ends_the_calls_it_no_longer_has(site: Site) -> None:
    await site.service.on_resync()
    site.follow("before")
    site.follow("after")  # came in over ARI on the new Asterisk, while AMI was down
    site.ami.status = {**STARTED, "CoreStartupTime": "16:00:02"}
    site.model.channels.clear()  # a resync rebuilt the model from the new Asterisk
    site.live("after")
    site.clock.now = T0 + 2

    await site.service.on_resync()

    rows = await site.rows()
    assert rows["before"] == ("node_lost", "Asterisk restarted (started 2026-12-02 16:00:02)")
    assert site.router.calls.keys() == {"after"}
    assert site.counted("node_lost") == 1


async def test_back_to_the_same_asterisk_ends_calls_as_their_missed_hangups(site: Site) -> None:
    await site.service.on_resync()
    site.follow("hung-up")
    site.follow("still-up")
    site.live("still-up")
    site.ami.connected = False
    site.clock.now = T0 + 2
    await site.service.tick()
    site.ami.connected = True

    await site.service.on_resync()

    rows = await site.rows()
    assert rows["hung-up"] == ("abandoned", None)  # as its Hangup in the queue would have
    assert site.router.calls.keys() == {"still-up"}
    assert site.counted("node_lost") == 0


async def test_at_first_sight_only_stored_calls_whose_channels_are_gone_are_lost(
    site: Site,
) -> None:
    await site.stored("gone")
    await site.stored("alive")
    site.live("alive")

    await site.service.on_resync()

    rows = await site.rows()
    assert rows["gone"][0] == "node_lost"
    assert rows["alive"] == (None, None)
    assert site.counted("node_lost") == 1
    followed = site.router.calls["alive"]  # an earlier run's, followed again from its row
    assert (followed.did, followed.arrived_at, followed.queue) == ("5000", T0, "support")


async def test_a_call_talking_through_a_restart_ends_answered_at_its_hangup(site: Site) -> None:
    await site.stored("talking")
    await site.calls.set_answered(InboundCallRecord(
        "talking", "PJSIP/trunk-talking", "5000", "+1555", datetime.fromtimestamp(T0, UTC),
        queue="support", queued_at=datetime.fromtimestamp(T0 + 1, UTC),
        answered_at=datetime.fromtimestamp(T0 + 4, UTC), agent_id="1001", node="n1"))
    site.live("talking")
    site.clock.now = T0 + 30
    await site.service.on_resync()  # this run's first sight of its node

    site.clock.now = T0 + 64
    site.router.on_ami_event(parse_ami({"Event": "Hangup", "Uniqueid": "talking",
                                        "Channel": "PJSIP/trunk-talking", "Cause": "16"}))
    await site.rows()
    row = await site.store.fetchone("SELECT * FROM inbound_calls WHERE call_id = 'talking'")
    assert row is not None
    assert (row["outcome"], row["agent_id"], row["did"]) == ("answered", "1001", "5000")
    assert row["answered_at"] == to_iso(datetime.fromtimestamp(T0 + 4, UTC))
    assert row["ended_at"] == to_iso(datetime.fromtimestamp(T0 + 64, UTC))
    assert site.counted("answered") == site.counted("node_lost") == 0  # counted by its run


async def test_a_caller_adopted_from_its_queue_before_the_resync_gets_its_row_back(
    site: Site,
) -> None:
    await site.stored("waiting")
    site.live("waiting")
    site.clock.now = T0 + 20
    site.model.apply(parse_ami({"Event": "QueueCallerJoin", "Queue": "support",
                                "Uniqueid": "waiting", "Channel": "PJSIP/trunk-waiting",
                                "Linkedid": "waiting", "Position": "1", "Count": "1"}))
    adopted = site.router._adopt("waiting", "support")
    assert adopted is not None and adopted.did == ""  # all the queue tells of a caller

    await site.service.on_resync()

    assert site.router.calls["waiting"] is adopted
    assert (adopted.did, adopted.arrived_at) == ("5000", T0)


async def test_a_survivor_ends_the_calls_of_a_node_whose_lease_ran_out(
    site: Site, store: Database
) -> None:
    other = Site(store)  # n2's controller, dead: its lease ran out at T0 + 10
    await other.leases.renew("n2", datetime.fromtimestamp(T0 + 10, UTC))
    await site.stored("on-n2", node="n2")
    await site.service.on_resync()
    await site.stored("mine")  # a call of this node's that arrived since

    site.clock.now = T0 + 9
    await site.service.tick()
    assert (await site.rows())["on-n2"] == (None, None)
    site.clock.now = T0 + 11  # the next renewal is due 2 s (lease / 5) after the first
    await site.service.tick()

    rows = await site.rows()
    assert rows["on-n2"] == ("node_lost", "the controller of its node is gone (lease ended)")
    assert rows["mine"] == (None, None)
    assert site.counted("node_lost") == 1
    lease = await store.fetchone("SELECT lease_until FROM node_leases WHERE node = 'n1'")
    assert lease is not None and lease["lease_until"] > datetime.fromtimestamp(
        T0 + 11, UTC).isoformat()
    # a second survivor finds it ended: not counted twice
    await site.calls.end_lost("on-n2", "again", datetime.fromtimestamp(T0 + 12, UTC))
    assert site.counted("node_lost") == 1

