"""The agents' status history (``agent_status_log``), their early wrap-up ends
(``agent_wrapup_ends``) and the calls they handled (``inbound_calls`` and the dialer's
attempts), as the stats read them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from controller.agents.machine import AgentStatus
from controller.agents.stats import AgentStats, HandledCall, StatusInterval, agent_stats
from controller.dialer.repository import DialerRepository
from controller.store.base import Database, from_iso, from_iso_or_none, to_iso


class StatusLogRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, agent_id: str, status: AgentStatus, reason: str,
                     now: datetime) -> None:
        """The agent is in ``status`` from ``now``: the interval it was in ends."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE agent_status_log SET ended_at = :now"
                " WHERE agent_id = :id AND ended_at IS NULL", {"id": agent_id, "now": to_iso(now)})
            if status is not AgentStatus.LOGGED_OUT:
                await conn.execute(
                    "INSERT INTO agent_status_log (agent_id, started_at, status, reason)"
                    " VALUES (:id, :now, :status, :reason) ON CONFLICT (agent_id, started_at)"
                    " DO UPDATE SET status = :status, reason = :reason, ended_at = NULL",
                    {"id": agent_id, "now": to_iso(now), "status": status.value,
                     "reason": reason})

    async def intervals(self, since: datetime) -> list[StatusInterval]:
        """Every interval that lasted into ``since`` or later."""
        rows = await self._db.fetchall(
            "SELECT agent_id, status, reason, started_at, ended_at FROM agent_status_log"
            " WHERE ended_at IS NULL OR ended_at >= :since ORDER BY agent_id, started_at",
            {"since": to_iso(since)})
        return [StatusInterval(row["agent_id"], AgentStatus(row["status"]), row["reason"],
                               from_iso(row["started_at"]), from_iso_or_none(row["ended_at"]))
                for row in rows]

    async def handled_calls(self, queue_wrapup_s: Mapping[str, float],
                            since: datetime) -> list[HandledCall]:
        """Inbound calls an agent answered and dialer calls an agent took from ``since`` on;
        ``queue_wrapup_s`` is each queue's wrap-up."""
        rows = await self._db.fetchall(
            "SELECT agent_id, queue, answered_at, ended_at, disposition, disposed_at"
            " FROM inbound_calls WHERE agent_id IS NOT NULL AND answered_at >= :since"
            " ORDER BY answered_at", {"since": to_iso(since)})
        inbound = [HandledCall(row["agent_id"], from_iso(row["answered_at"]),
                               from_iso_or_none(row["ended_at"]),
                               queue_wrapup_s.get(row["queue"] or "", 0.0), row["disposition"],
                               from_iso_or_none(row["disposed_at"]))
                   for row in rows]
        outbound = [HandledCall(call.agent_id, call.connected_at, call.talk_ended_at,
                                call.wrapup_seconds, call.disposition, call.disposed_at,
                                outbound=True)
                    for call in await DialerRepository(self._db).connected_calls(since)]
        return inbound + outbound

    async def record_wrapup_end(self, agent_id: str, now: datetime) -> None:
        """The agent ended its wrap-up at ``now`` (``*47``)."""
        await self._db.execute(
            "INSERT INTO agent_wrapup_ends (agent_id, ended_at) VALUES (:id, :now)"
            " ON CONFLICT (agent_id, ended_at) DO NOTHING", {"id": agent_id, "now": to_iso(now)})

    async def wrapup_ends(self, since: datetime) -> list[tuple[str, datetime]]:
        rows = await self._db.fetchall(
            "SELECT agent_id, ended_at FROM agent_wrapup_ends WHERE ended_at >= :since",
            {"since": to_iso(since)})
        return [(row["agent_id"], from_iso(row["ended_at"])) for row in rows]

    async def call_ends_elsewhere(self, node: str, since: datetime) -> list[tuple[str, datetime]]:
        """When the inbound calls agents took on nodes other than ``node`` ended, from
        ``since`` on: their wrap-up runs there. A call its node's loss ended (``node_lost``,
        settled late by a survivor) started no wrap-up anywhere."""
        rows = await self._db.fetchall(
            "SELECT agent_id, ended_at FROM inbound_calls WHERE ended_at >= :since"
            " AND agent_id IS NOT NULL AND outcome = 'answered' AND node <> :node",
            {"since": to_iso(since), "node": node})
        return [(row["agent_id"], from_iso(row["ended_at"])) for row in rows]

    async def stats(self, queue_wrapup_s: Mapping[str, float], since: datetime,
                    now: datetime) -> list[AgentStats]:
        """``agent_stats`` over ``[since, now]`` from the store."""
        return agent_stats(await self.intervals(since),
                           await self.handled_calls(queue_wrapup_s, since), since, now,
                           await self.wrapup_ends(since))
