"""Carries out what ``NodeWatch`` decides about this controller's node, and settles the calls
of nodes whose controller is gone.

* Twice a second: feed the watch the AMI connection's state and the clock; a ``NodeLost`` ends
  every open call of the node ``node_lost``: the router's (it knows their queue and answer) and
  those only the store holds (an earlier run's).
* After every AMI resync: feed the watch the Asterisk's start time (``CoreStatus``); calls whose
  channels are gone end as the watch says. At this controller's start the store's open calls of
  its node whose channels are up (an earlier run's, waiting or talking) are followed again by
  the router, so their hangups end them; the others are lost.
* Every ``lease / 5`` seconds: renew this controller's lease on its node, and end ``node_lost``
  the open calls of nodes whose controller's lease ran out (it died, maybe with its node: only
  the store says what it had open, and its calls are out of this controller's sight).

Each call ended gets one ``call.node_lost`` log event and is counted in
``callctl_queue_calls_total{outcome="node_lost"}``; a call two survivors both find is ended
(and counted) by the first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta

from controller.asterisk.ami import AmiClient, AmiError
from controller.config import NodeConfig
from controller.inbound.repository import InboundCallRecord, InboundCallRepository
from controller.inbound.router import InboundRouter
from controller.logs import get_logger
from controller.metrics.registry import Metrics
from controller.nodes.repository import NodeLeaseRepository
from controller.nodes.watch import ChannelsGone, NodeLost, NodeWatch, Verdict
from controller.state.model import LiveModel
from controller.store.base import StoreError

log = get_logger("nodes")

TICK_S = 0.5
RENEWALS_PER_LEASE = 5


class NodeService:
    def __init__(
        self,
        node: str,
        config: NodeConfig,
        ami: AmiClient,
        model: LiveModel,
        router: InboundRouter,
        calls: InboundCallRepository,
        leases: NodeLeaseRepository,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._node = node
        self._lease = config.lease
        self._ami = ami
        self._model = model
        self._router = router
        self._calls = calls
        self._leases = leases
        self._metrics = metrics
        self._clock = clock
        self.watch = NodeWatch(config.lost_after, clock())
        self._last_renewal: float | None = None

    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(TICK_S)

    async def tick(self) -> None:
        """One round: the connection's state to the watch, and the lease when it is due."""
        now = self._clock()
        if not self._ami.connected:
            self.watch.connection_lost(now)
        await self._carry_out(self.watch.tick(now))
        due = self._lease / RENEWALS_PER_LEASE
        if self._last_renewal is None or now - self._last_renewal >= due:
            await self._keep_lease(now)

    async def on_resync(self) -> None:
        """The resync hook: has the Asterisk restarted, and which calls' channels are gone."""
        try:
            status = await self._ami.action("CoreStatus")
        except AmiError as error:  # the watch goes on counting the outage
            log.warning("node.status_failed", node=self._node, error=str(error))
            return
        started = f"{status.get('CoreStartupDate', '')} {status.get('CoreStartupTime', '')}"
        await self._carry_out(self.watch.resynced(started))

    async def _carry_out(self, verdict: Verdict) -> None:
        live: Collection[str] = self._model.channels
        match verdict:
            case NodeLost(reason=reason, channels_live=channels_live):
                log.warning("node.lost", node=self._node, reason=reason)
                live = live if channels_live else ()
                ended = self._router.end_with_node(reason, live)
                await self._settle_stored(reason, skip={*ended, *self._router.calls, *live})
            case ChannelsGone(first_sight=first_sight):
                ended = self._router.end_missed_hangups(live)
                if first_sight:
                    await self._settle_stored(
                        "open at this controller's start, its channel gone",
                        skip={*ended, *self._router.calls},
                        follow={call_id for call_id in live if call_id not in ended})

    async def _settle_stored(
        self, reason: str, skip: Collection[str], follow: Collection[str] = ()
    ) -> None:
        """The stored open calls of this node: those in ``follow`` (an earlier run's whose
        channel is up, at this controller's start) are followed again by the router, the
        others not in ``skip`` are lost with it."""
        try:
            stored = await self._calls.open_calls(self._node)
            for call in stored:
                if call.call_id in follow:
                    self._router.follow_stored(call)
            await self._end_lost(stored, reason, {*skip, *follow})
        except StoreError as error:  # they stay open: a survivor's lease check may end them
            log.warning("node.settle_failed", node=self._node, error=str(error))

    async def _keep_lease(self, now: float) -> None:
        moment = datetime.fromtimestamp(now, UTC)
        try:
            await self._leases.renew(self._node, moment + timedelta(seconds=self._lease))
            self._last_renewal = now
            lapsed = await self._calls.open_calls_of_lapsed_nodes(self._node, moment)
            await self._end_lost(lapsed, "the controller of its node is gone (lease ended)")
        except StoreError as error:  # the next tick tries again
            log.warning("node.lease_failed", node=self._node, error=str(error))

    async def _end_lost(
        self, calls: list[InboundCallRecord], reason: str, skip: Collection[str] = ()
    ) -> None:
        """End ``node_lost`` the stored open calls not in ``skip`` that nobody ended first."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        for call in calls:
            if call.call_id in skip or not await self._calls.end_lost(call.call_id, reason, now):
                continue
            waited = (now - (call.queued_at or call.arrived_at)).total_seconds()
            if call.queue:
                self._metrics.call_outcome(call.queue, "node_lost", max(0.0, waited))
            log.warning(
                "call.node_lost",
                call_id=call.call_id,
                node=call.node,
                outcome="node_lost",
                queue=call.queue,
                settled_by=self._node,
                reason=reason,
            )
