"""Store access of inbound: one row per inbound call, and the agents' persisted login state.

Two repositories, one per domain, written against the ``Database`` port with portable SQL:

* ``InboundCallRepository`` (table ``inbound_calls``): the router writes a call's row when it
  arrives, adds its agent when answered and completes it when the call ends; the agent's
  disposition lands on it; ``callctl queue status`` and the queue gauges read today's outcomes,
  dispositions and waits from it.
* ``AgentRepository`` (tables ``agents`` and ``agent_queues``): what agents asked for (logged
  in to which queues, paused with which reason), which ``AgentService.reconcile`` makes
  Asterisk match after every reconnect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from controller.pjsip import agent_interface
from controller.store.base import (
    Database,
    Row,
    from_iso,
    from_iso_or_none,
    listing_filter,
    to_iso,
)


@dataclass(frozen=True, slots=True)
class InboundCallRecord:
    """An inbound call as stored; ``outcome`` is None until the call has one."""

    call_id: str
    channel: str
    did: str
    caller: str
    arrived_at: datetime
    queue: str | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str | None = None
    agent_id: str | None = None
    rule: str | None = None
    destination: str | None = None
    reason: str | None = None
    node: str | None = None


@dataclass(frozen=True, slots=True)
class AnsweredCall:
    """An agent's latest answered queue call, as its disposition needs it."""

    call_id: str
    queue: str
    caller: str
    answered_at: datetime
    ended_at: datetime | None
    disposition: str | None


@dataclass(slots=True)
class QueueTally:
    """What one queue's calls came to: how many per outcome, and per disposition."""

    outcomes: dict[str, int] = field(default_factory=dict)
    dispositions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CallFilter:
    """Which stored calls a listing shows: arrived in ``[since, until)``, newest first."""

    queue: str | None = None
    agent_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 1000


@dataclass(slots=True)
class QueueWaits:
    """Seconds waited in one queue by answered calls (until answered) and abandoned calls."""

    answered: list[float] = field(default_factory=list)
    abandoned: list[float] = field(default_factory=list)


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else to_iso(moment)


def _params(call: InboundCallRecord) -> dict[str, str | None]:
    return {
        "id": call.call_id,
        "channel": call.channel,
        "did": call.did,
        "caller": call.caller,
        "queue": call.queue,
        "arrived": to_iso(call.arrived_at),
        "queued": _text(call.queued_at),
        "answered": _text(call.answered_at),
        "ended": _text(call.ended_at),
        "outcome": call.outcome,
        "agent": call.agent_id,
        "rule": call.rule,
        "dest": call.destination,
        "reason": call.reason,
        "node": call.node,
    }


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if start is None or end is None:
        return None
    return round((from_iso(end) - from_iso(start)).total_seconds(), 3)


def _reported(row: Row) -> dict[str, Any]:
    waited_until = row["answered_at"] or row["ended_at"]
    return {**row, "wait_seconds": _seconds_between(row["queued_at"], waited_until),
            "talk_seconds": _seconds_between(row["answered_at"], row["ended_at"])}


class InboundCallRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_arrival(self, call: InboundCallRecord) -> None:
        """Write the row of a call that arrived; a row already written (the call's end
        overtook its arrival) is kept as it is."""
        await self._db.execute(
            "INSERT INTO inbound_calls (call_id, channel, did, caller, queue, arrived_at,"
            " outcome, rule, destination, reason, node) VALUES (:id, :channel, :did, :caller,"
            " :queue, :arrived, :outcome, :rule, :dest, :reason, :node)"
            " ON CONFLICT (call_id) DO NOTHING",
            _params(call),
        )

    async def set_overflow(
        self, call_id: str, rule: str | None, destination: str | None, queue: str | None
    ) -> None:
        """A waiting call left its queue by ``rule`` for ``destination`` (``queue`` if that
        is another queue)."""
        await self._db.execute(
            "UPDATE inbound_calls SET rule = :rule, destination = :dest, queue = :queue"
            " WHERE call_id = :id",
            {"rule": rule, "dest": destination, "queue": queue, "id": call_id},
        )

    async def set_answered(self, call: InboundCallRecord) -> None:
        """An agent answered the call: its agent and answer, whether or not the arrival row
        was written yet (the outcome stays the end's to write)."""
        await self._db.execute(
            "INSERT INTO inbound_calls (call_id, channel, did, caller, queue, arrived_at,"
            " queued_at, answered_at, agent_id, node) VALUES (:id, :channel, :did, :caller,"
            " :queue, :arrived, :queued, :answered, :agent, :node)"
            " ON CONFLICT (call_id) DO UPDATE SET answered_at = :answered, agent_id = :agent",
            _params(call),
        )

    async def save_ended(self, call: InboundCallRecord) -> None:
        """Write a call's final row, whether or not its arrival row was written yet."""
        await self._db.execute(
            "INSERT INTO inbound_calls (call_id, channel, did, caller, queue, arrived_at,"
            " queued_at, answered_at, ended_at, outcome, agent_id, rule, destination, reason,"
            " node) VALUES (:id, :channel, :did, :caller, :queue, :arrived, :queued, :answered,"
            " :ended, :outcome, :agent, :rule, :dest, :reason, :node)"
            " ON CONFLICT (call_id) DO UPDATE"
            " SET queue = :queue, queued_at = :queued, answered_at = :answered,"
            " ended_at = :ended, outcome = :outcome, agent_id = :agent, rule = :rule,"
            " destination = :dest, reason = :reason",
            _params(call),
        )

    async def open_calls(self, node: str) -> list[InboundCallRecord]:
        """The calls of ``node`` with no end stored, as stored."""
        return await self._open_calls(
            "SELECT * FROM inbound_calls WHERE node = :node AND ended_at IS NULL"
            " ORDER BY arrived_at",
            {"node": node},
        )

    async def open_call_counts(self) -> dict[str, int]:
        """How many calls with no end stored each node has."""
        rows = await self._db.fetchall(
            "SELECT node, COUNT(*) AS n FROM inbound_calls WHERE ended_at IS NULL"
            " AND node IS NOT NULL GROUP BY node",
            {},
        )
        return {row["node"]: int(row["n"]) for row in rows}

    async def talking_elsewhere(self, own: str, now: datetime) -> dict[str, list[str]]:
        """The agents on a queue call not over yet on another node whose controller is alive
        at ``now``, and those nodes (sorted): stored at the answer, before any view of that
        node shows the call."""
        rows = await self._db.fetchall(
            "SELECT DISTINCT c.agent_id, c.node FROM inbound_calls c"
            " JOIN node_leases l ON l.node = c.node"
            " WHERE c.ended_at IS NULL AND c.agent_id IS NOT NULL AND c.answered_at IS NOT NULL"
            " AND c.node <> :own AND l.lease_until >= :now ORDER BY c.node",
            {"own": own, "now": to_iso(now)},
        )
        nodes: dict[str, list[str]] = {}
        for row in rows:
            nodes.setdefault(row["agent_id"], []).append(row["node"])
        return nodes

    async def open_calls_of_lapsed_nodes(
        self, own: str, now: datetime
    ) -> list[InboundCallRecord]:
        """The open calls of other nodes whose controller's lease ran out before ``now``:
        that controller is gone, and only the store says what it had open."""
        return await self._open_calls(
            "SELECT c.* FROM inbound_calls c JOIN node_leases l ON l.node = c.node"
            " WHERE c.ended_at IS NULL AND c.node != :own AND l.lease_until < :now"
            " ORDER BY c.arrived_at",
            {"own": own, "now": to_iso(now)},
        )

    async def _open_calls(self, sql: str, params: dict[str, str]) -> list[InboundCallRecord]:
        return [
            InboundCallRecord(
                call_id=row["call_id"],
                channel=row["channel"],
                did=row["did"],
                caller=row["caller"],
                arrived_at=from_iso(row["arrived_at"]),
                queue=row["queue"],
                queued_at=from_iso_or_none(row["queued_at"]),
                answered_at=from_iso_or_none(row["answered_at"]),
                outcome=row["outcome"],
                agent_id=row["agent_id"],
                rule=row["rule"],
                destination=row["destination"],
                reason=row["reason"],
                node=row["node"],
            )
            for row in await self._db.fetchall(sql, params)
        ]

    async def end_lost(self, call_id: str, reason: str, now: datetime) -> bool:
        """End an open call ``node_lost``; False if it had ended already (settled by another
        controller, or its own wrote its end first)."""
        changed = await self._db.execute(
            "UPDATE inbound_calls SET outcome = 'node_lost', reason = :reason, ended_at = :now"
            " WHERE call_id = :id AND ended_at IS NULL",
            {"id": call_id, "reason": reason, "now": to_iso(now)},
        )
        return changed > 0

    async def tallies(self, arrived_since: datetime) -> dict[str, QueueTally]:
        """Per queue, what the calls that arrived since ``arrived_since`` came to: one read for
        the outcomes and the agents' dispositions alike (a wallboard asks every second)."""
        rows = await self._db.fetchall(
            "SELECT queue, outcome, disposition, COUNT(*) AS n FROM inbound_calls"
            " WHERE arrived_at >= :since AND queue IS NOT NULL"
            " AND (outcome IS NOT NULL OR disposition IS NOT NULL)"
            " GROUP BY queue, outcome, disposition",
            {"since": to_iso(arrived_since)},
        )
        tallies: dict[str, QueueTally] = {}
        for row in rows:
            tally = tallies.setdefault(row["queue"], QueueTally())
            for counts, value in ((tally.outcomes, row["outcome"]),
                                  (tally.dispositions, row["disposition"])):
                if value is not None:
                    counts[value] = counts.get(value, 0) + row["n"]
        return tallies

    async def last_answered_by(self, agent_id: str) -> AnsweredCall | None:
        """The queue call ``agent_id`` answered last, ended or not."""
        row = await self._db.fetchone(
            "SELECT call_id, queue, caller, answered_at, ended_at, disposition FROM inbound_calls"
            " WHERE agent_id = :agent AND answered_at IS NOT NULL AND queue IS NOT NULL"
            " ORDER BY answered_at DESC LIMIT 1",
            {"agent": agent_id},
        )
        if row is None:
            return None
        return AnsweredCall(row["call_id"], row["queue"], row["caller"],
                            from_iso(row["answered_at"]), from_iso_or_none(row["ended_at"]),
                            row["disposition"])

    async def record_disposition(
        self, call_id: str, disposition: str, agent_id: str, now: datetime
    ) -> bool:
        """Store what the call came to; False if it has a disposition already (one per call:
        a second key, or another way in first)."""
        changed = await self._db.execute(
            "UPDATE inbound_calls SET disposition = :disposition, disposed_by = :agent,"
            " disposed_at = :now WHERE call_id = :id AND disposition IS NULL",
            {"id": call_id, "disposition": disposition, "agent": agent_id, "now": to_iso(now)},
        )
        return changed > 0

    async def list_calls(self, where: CallFilter) -> list[dict[str, Any]]:
        """The calls matching ``where``, newest first, as a report shows them: the stored
        columns plus the seconds waited in the queue (to the answer, or to the end) and
        talked (answer to end)."""
        conditions, params = listing_filter(
            {"queue": where.queue, "agent_id": where.agent_id, "outcome": where.outcome},
            "arrived_at", where.since, where.until)
        rows = await self._db.fetchall(
            f"SELECT * FROM inbound_calls WHERE {conditions}"
            " ORDER BY arrived_at DESC, call_id LIMIT :limit",
            {**params, "limit": where.limit},
        )
        return [_reported(row) for row in rows]

    async def waits(self, ended_since: datetime) -> dict[str, QueueWaits]:
        """Per queue: the waits of the answered and abandoned calls ended since
        ``ended_since`` (the service level's input)."""
        rows = await self._db.fetchall(
            "SELECT queue, outcome, queued_at, answered_at, ended_at FROM inbound_calls"
            " WHERE ended_at >= :since AND outcome IN ('answered', 'abandoned')"
            " AND queued_at IS NOT NULL",
            {"since": to_iso(ended_since)},
        )
        waits: dict[str, QueueWaits] = {}
        for row in rows:
            queue = waits.setdefault(row["queue"], QueueWaits())
            start = from_iso(row["queued_at"])
            if row["outcome"] == "answered" and row["answered_at"]:
                queue.answered.append((from_iso(row["answered_at"]) - start).total_seconds())
            elif row["outcome"] == "abandoned":
                queue.abandoned.append((from_iso(row["ended_at"]) - start).total_seconds())
        return waits


@dataclass(frozen=True, slots=True)
class QueueMembership:
    queue: str
    penalty: int = 0


@dataclass(frozen=True, slots=True)
class StoredAgent:
    """An agent as stored; ``queues`` are the ones it is logged in to (none once logged out)."""

    agent_id: str
    logged_in: bool
    paused: bool
    pause_reason: str
    queues: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LoggedInMembership:
    """One queue a logged-in agent belongs to, with the agent's pause."""

    agent_id: str
    membership: QueueMembership
    paused: bool
    pause_reason: str


class AgentRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def log_in(
        self, agent_id: str, memberships: Sequence[QueueMembership], now: datetime
    ) -> None:
        """The agent is logged in, unpaused, to exactly ``memberships``."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO agents (agent_id, interface, logged_in, paused, pause_reason,"
                " updated_at) VALUES (:id, :iface, 1, 0, '', :now)"
                " ON CONFLICT (agent_id) DO UPDATE SET logged_in = 1, paused = 0,"
                " pause_reason = '', interface = :iface, updated_at = :now",
                {"id": agent_id, "iface": agent_interface(agent_id), "now": to_iso(now)},
            )
            await conn.execute("DELETE FROM agent_queues WHERE agent_id = :id", {"id": agent_id})
            await conn.executemany(
                "INSERT INTO agent_queues (agent_id, queue, penalty) VALUES (:id, :q, :p)",
                [{"id": agent_id, "q": m.queue, "p": m.penalty} for m in memberships],
            )

    async def log_out(self, agent_id: str, now: datetime) -> bool:
        """Log the agent out (and unpause it); False when no such agent is stored."""
        changed = await self._db.execute(
            "UPDATE agents SET logged_in = 0, paused = 0, pause_reason = '', updated_at = :now"
            " WHERE agent_id = :id",
            {"id": agent_id, "now": to_iso(now)},
        )
        return changed > 0

    async def set_paused(self, agent_id: str, paused: bool, reason: str, now: datetime) -> None:
        """Pause the agent with ``reason``, or unpause it (its reason is cleared)."""
        await self._db.execute(
            "UPDATE agents SET paused = :p, pause_reason = :r, updated_at = :now"
            " WHERE agent_id = :id",
            {"id": agent_id, "p": int(paused), "r": reason if paused else "", "now": to_iso(now)},
        )

    async def adopt(
        self,
        agent_id: str,
        membership: QueueMembership,
        paused: bool,
        reason: str,
        now: datetime,
    ) -> None:
        """Store a queue membership found in Asterisk: the agent is logged in to that queue
        too (its other queues are kept), paused as Asterisk says."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO agents (agent_id, interface, logged_in, paused, pause_reason,"
                " updated_at) VALUES (:id, :iface, 1, :p, :r, :now)"
                " ON CONFLICT (agent_id) DO UPDATE SET logged_in = 1, paused = :p,"
                " pause_reason = :r, updated_at = :now",
                {
                    "id": agent_id,
                    "iface": agent_interface(agent_id),
                    "p": int(paused),
                    "r": reason,
                    "now": to_iso(now),
                },
            )
            await conn.execute(
                "INSERT INTO agent_queues (agent_id, queue, penalty) VALUES (:id, :q, :p)"
                " ON CONFLICT (agent_id, queue) DO NOTHING",
                {"id": agent_id, "q": membership.queue, "p": membership.penalty},
            )

    async def versions(self) -> dict[str, str]:
        """Every stored agent's version: when its position last changed (``updated_at``)."""
        rows = await self._db.fetchall("SELECT agent_id, updated_at FROM agents")
        return {row["agent_id"]: row["updated_at"] for row in rows}

    async def followed_by(self, node: str) -> dict[str, str]:
        """The versions of the agents' positions ``node``'s members last matched."""
        rows = await self._db.fetchall(
            "SELECT agent_id, version FROM agent_follows WHERE node = :node", {"node": node})
        return {row["agent_id"]: row["version"] for row in rows}

    async def record_followed(self, node: str, versions: Mapping[str, str]) -> None:
        if not versions:
            return
        await self._db.executemany(
            "INSERT INTO agent_follows (node, agent_id, version) VALUES (:node, :id, :v)"
            " ON CONFLICT (node, agent_id) DO UPDATE SET version = :v",
            [{"node": node, "id": agent_id, "v": v} for agent_id, v in versions.items()],
        )

    async def agents(self) -> list[StoredAgent]:
        """Every stored agent, by id."""
        return await self._select_agents("", {})

    async def agent(self, agent_id: str) -> StoredAgent | None:
        found = await self._select_agents(" WHERE a.agent_id = :id", {"id": agent_id})
        return found[0] if found else None

    async def _select_agents(self, where: str, params: dict[str, str]) -> list[StoredAgent]:
        rows = await self._db.fetchall(
            "SELECT a.agent_id, a.logged_in, a.paused, a.pause_reason, q.queue"
            f" FROM agents a LEFT JOIN agent_queues q ON q.agent_id = a.agent_id{where}"
            " ORDER BY a.agent_id, q.queue",
            params,
        )
        agents = []
        for agent_id, group in groupby(rows, key=lambda row: row["agent_id"]):
            memberships = list(group)
            first = memberships[0]
            logged_in = bool(first["logged_in"])
            queues = [row["queue"] for row in memberships if row["queue"] is not None]
            agents.append(
                StoredAgent(
                    agent_id=agent_id,
                    logged_in=logged_in,
                    paused=bool(first["paused"]),
                    pause_reason=first["pause_reason"],
                    queues=tuple(queues) if logged_in else (),
                )
            )
        return agents

    async def logged_in_memberships(self) -> list[LoggedInMembership]:
        """Every queue membership of the logged-in agents."""
        rows = await self._db.fetchall(
            "SELECT a.agent_id, a.paused, a.pause_reason, q.queue, q.penalty FROM agents a"
            " JOIN agent_queues q ON q.agent_id = a.agent_id WHERE a.logged_in = 1"
            " ORDER BY a.agent_id, q.queue"
        )
        return [
            LoggedInMembership(
                agent_id=row["agent_id"],
                membership=QueueMembership(row["queue"], row["penalty"]),
                paused=bool(row["paused"]),
                pause_reason=row["pause_reason"],
            )
            for row in rows
        ]

    async def is_logged_in_to(self, agent_id: str, queue: str) -> bool:
        row = await self._db.fetchone(
            "SELECT 1 AS known FROM agents a JOIN agent_queues q ON q.agent_id = a.agent_id"
            " WHERE a.agent_id = :id AND q.queue = :q AND a.logged_in = 1",
            {"id": agent_id, "q": queue},
        )
        return row is not None
