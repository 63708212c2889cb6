"""Each node's view of its queues in the store, so any controller's API answers for the site.

``QueueViewPublisher`` writes this node's ``NodeQueueView`` of every configured queue once a
second, while its AMI is connected and synced (a view of a node out of sight would be stale).
``NodeQueueViewRepository.fresh`` reads the other nodes' rows written in the last
``FRESH_S`` seconds: a node whose controller or Asterisk is gone drops out of the site's
figures within that time. The merge is ``controller.inbound.site_queues``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from controller.inbound.site_queues import NodeQueueView, view_of
from controller.logs import get_logger
from controller.state.model import AgentState, LiveModel
from controller.state.sync import AmiStateSync
from controller.store.base import Database, StoreError, to_iso

log = get_logger("nodes.queue_views")

PUBLISH_EVERY_S = 1.0
FRESH_S = 5.0  # five missed writes: the node is out of sight


class NodeQueueViewRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def publish(self, node: str, views: dict[str, NodeQueueView], now: datetime) -> None:
        async with self._db.transaction() as conn:
            for queue, view in views.items():
                await conn.execute(
                    "INSERT INTO node_queues (node, queue, callers, oldest_joined_at, agents,"
                    " updated_at) VALUES (:node, :queue, :callers, :oldest, :agents, :now)"
                    " ON CONFLICT (node, queue) DO UPDATE SET callers = :callers,"
                    " oldest_joined_at = :oldest, agents = :agents, updated_at = :now",
                    {"node": node, "queue": queue, "callers": view.callers,
                     "oldest": view.oldest_joined_at, "now": to_iso(now),
                     "agents": json.dumps({a: s.value for a, s in sorted(view.agents.items())})},
                )

    async def fresh(self, own: str, now: datetime) -> dict[str, list[NodeQueueView]]:
        """The other nodes' views written since ``now - FRESH_S``, by queue."""
        rows = await self._db.fetchall(
            "SELECT queue, callers, oldest_joined_at, agents FROM node_queues"
            " WHERE node <> :own AND updated_at >= :since",
            {"own": own, "since": to_iso(now - timedelta(seconds=FRESH_S))},
        )
        views: dict[str, list[NodeQueueView]] = {}
        for row in rows:
            agents = {a: AgentState(s) for a, s in json.loads(row["agents"]).items()}
            views.setdefault(row["queue"], []).append(
                NodeQueueView(row["callers"], row["oldest_joined_at"], agents))
        return views

    async def on_call_elsewhere(self, own: str, now: datetime) -> dict[str, list[str]]:
        """The members on a call in the other nodes' fresh views, each with those nodes
        (sorted), by interface: any call of the agent's phone that node's app_queue sees, a
        queue call, a campaign's nailed-up line or one the agent placed."""
        rows = await self._db.fetchall(
            "SELECT node, agents FROM node_queues WHERE node <> :own AND updated_at >= :since",
            {"own": own, "since": to_iso(now - timedelta(seconds=FRESH_S))},
        )
        nodes: dict[str, set[str]] = {}
        for row in rows:
            for interface, state in json.loads(row["agents"]).items():
                if state == AgentState.ON_CALL.value:
                    nodes.setdefault(interface, set()).add(row["node"])
        return {interface: sorted(there) for interface, there in nodes.items()}


class QueueViewPublisher:
    def __init__(
        self, node: str, queues: list[str], model: LiveModel, sync: AmiStateSync,
        views: NodeQueueViewRepository,
    ) -> None:
        self._node = node
        self._queues = queues
        self._model = model
        self._sync = sync
        self._views = views
        self._failing = False

    async def run(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_EVERY_S)
            if self._sync.synced:  # connected, and the model rebuilt since
                await self.publish()

    async def publish(self) -> None:
        now = self._model.now()
        views = {name: view_of(queue, now) if (queue := self._model.queues.get(name))
                 else NodeQueueView() for name in self._queues}
        try:
            await self._views.publish(self._node, views, datetime.fromtimestamp(now, UTC))
        except StoreError as error:  # the next second tries again; others see us go stale
            if not self._failing:
                log.warning("node.queue_views_failed", node=self._node, error=str(error))
            self._failing = True
            return
        if self._failing:
            log.info("node.queue_views_resumed", node=self._node)
        self._failing = False
