"""Agents: login/logout/pause over AMI, persisted so that state survives restarts.

Dynamic queue members live in Asterisk (app_queue keeps them in astdb with
``persistentmembers``) and the intent lives in the store. After every AMI (re)connect,
``reconcile`` makes Asterisk match the store: an agent logged in while Asterisk restarted
without its astdb is added back; a member someone added behind our back (Asterisk CLI, a feature
code) is adopted into the store, because the agent is evidently working.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.asterisk.ami import AmiClient, AmiError
from controller.logs import get_logger
from controller.state.model import LiveModel
from controller.store.base import Database
from controller.tasks import TaskSet

log = get_logger("agents")


class AgentError(Exception):
    """An agent command that cannot be carried out (unknown agent, no queue, AMI refused)."""


@dataclass(frozen=True)
class QueueMembership:
    queue: str
    penalty: int = 0


def interface_of(agent_id: str) -> str:
    return f"PJSIP/{agent_id}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class AgentService:
    def __init__(
        self,
        ami: AmiClient,
        store: Database,
        model: LiveModel,
        default_queues: Callable[[str], Sequence[QueueMembership]],
    ) -> None:
        self._ami = ami
        self._store = store
        self._model = model
        self._default_queues = default_queues
        self._tasks = TaskSet("agents")

    async def login(
        self, agent_id: str, queues: Sequence[QueueMembership] | None = None
    ) -> list[str]:
        memberships = list(queues or self._default_queues(agent_id))
        if not memberships:
            raise AgentError(f"agent {agent_id}: no queue given and none configured for it")
        interface = interface_of(agent_id)
        for membership in memberships:
            await self._queue_add(agent_id, membership)
        async with self._store.transaction() as conn:
            await conn.execute(
                "INSERT INTO agents (agent_id, interface, logged_in, paused, pause_reason,"
                " updated_at) VALUES (:id, :iface, 1, 0, '', :now)"
                " ON CONFLICT (agent_id) DO UPDATE SET logged_in = 1, paused = 0,"
                " pause_reason = '', interface = :iface, updated_at = :now",
                {"id": agent_id, "iface": interface, "now": _now()},
            )
            await conn.execute("DELETE FROM agent_queues WHERE agent_id = :id", {"id": agent_id})
            await conn.executemany(
                "INSERT INTO agent_queues (agent_id, queue, penalty) VALUES (:id, :q, :p)",
                [{"id": agent_id, "q": m.queue, "p": m.penalty} for m in memberships],
            )
        names = [m.queue for m in memberships]
        log.info("agent.logged_in", agent_id=agent_id, queues=names)
        return names

    async def logout(self, agent_id: str) -> None:
        interface = interface_of(agent_id)
        for queue in self._queues_with(interface):
            try:
                await self._ami.action("QueueRemove", Queue=queue, Interface=interface)
            except AmiError as error:
                if "not" not in str(error).lower():  # "not in queue" is already the goal
                    raise AgentError(f"agent {agent_id}: {error}") from None
        changed = await self._store.execute(
            "UPDATE agents SET logged_in = 0, paused = 0, pause_reason = '', updated_at = :now"
            " WHERE agent_id = :id",
            {"id": agent_id, "now": _now()},
        )
        if not changed:
            raise AgentError(f"agent {agent_id} is not known (never logged in)")
        log.info("agent.logged_out", agent_id=agent_id)

    async def pause(self, agent_id: str, paused: bool, reason: str = "") -> None:
        interface = interface_of(agent_id)
        if not self._queues_with(interface):
            raise AgentError(f"agent {agent_id} is not logged in")
        try:
            await self._ami.action(
                "QueuePause",
                Interface=interface,
                Paused="true" if paused else "false",
                Reason=reason or None,
            )
        except AmiError as error:
            raise AgentError(f"agent {agent_id}: {error}") from None
        await self._store.execute(
            "UPDATE agents SET paused = :p, pause_reason = :r, updated_at = :now"
            " WHERE agent_id = :id",
            {"id": agent_id, "p": int(paused), "r": reason if paused else "", "now": _now()},
        )
        log.info("agent.paused" if paused else "agent.unpaused", agent_id=agent_id, reason=reason)

    async def list_agents(self) -> list[dict[str, Any]]:
        now = self._model.now()
        rows = await self._store.fetchall(
            "SELECT a.agent_id, a.logged_in, a.paused, a.pause_reason, q.queue"
            " FROM agents a LEFT JOIN agent_queues q ON q.agent_id = a.agent_id"
            " ORDER BY a.agent_id, q.queue"
        )
        agents: dict[str, dict[str, Any]] = {}
        for row in rows:
            agent = agents.setdefault(
                row["agent_id"],
                {
                    "agent_id": row["agent_id"],
                    "logged_in": bool(row["logged_in"]),
                    "paused": bool(row["paused"]),
                    "pause_reason": row["pause_reason"],
                    "queues": [],
                    "state": {},
                },
            )
            if row["queue"] is not None and row["logged_in"]:
                agent["queues"].append(row["queue"])
        for queue in self._model.queues.values():
            for member in queue.members.values():
                agent_id = member.interface.removeprefix("PJSIP/")
                if agent_id in agents:
                    agents[agent_id]["state"][queue.name] = member.state(now).value
        return list(agents.values())

    async def reconcile(self) -> None:
        """Make Asterisk's dynamic members match the store (run after each resync)."""
        rows = await self._store.fetchall(
            "SELECT a.agent_id, a.paused, a.pause_reason, q.queue, q.penalty FROM agents a"
            " JOIN agent_queues q ON q.agent_id = a.agent_id WHERE a.logged_in = 1"
        )
        wanted = {(r["agent_id"], r["queue"]) for r in rows}
        for row in rows:
            queue = self._model.queues.get(row["queue"])
            interface = interface_of(row["agent_id"])
            if queue is None or interface not in queue.members:
                await self._queue_add(
                    row["agent_id"], QueueMembership(row["queue"], row["penalty"])
                )
                log.info("agent.restored", agent_id=row["agent_id"], queue=row["queue"])
                if row["paused"]:
                    await self._ami.action(
                        "QueuePause",
                        Interface=interface,
                        Queue=row["queue"],
                        Paused="true",
                        Reason=row["pause_reason"] or None,
                    )
        for queue in self._model.queues.values():
            for member in list(queue.members.values()):
                agent_id = member.interface.removeprefix("PJSIP/")
                if member.interface.startswith("PJSIP/") and (agent_id, queue.name) not in wanted:
                    await self._adopt(
                        agent_id, queue.name, member.penalty, member.paused, member.paused_reason
                    )

    def on_ami_event(self, event: Mapping[str, Any]) -> None:
        """A member that appears after the resync (added at the Asterisk CLI, or during our
        reconnect) is adopted too, so the store never lags behind Asterisk."""
        interface = event.get("Interface", "")
        if event.get("Event") == "QueueMemberAdded" and interface.startswith("PJSIP/"):
            self._tasks.spawn(self._adopt_if_unknown(
                interface.removeprefix("PJSIP/"), event.get("Queue", ""),
                int(event.get("Penalty") or 0), event.get("Paused") == "1",
                event.get("PausedReason", ""),
            ))

    async def _adopt_if_unknown(
        self, agent_id: str, queue: str, penalty: int, paused: bool, reason: str
    ) -> None:
        known = await self._store.fetchone(
            "SELECT 1 AS known FROM agents a JOIN agent_queues q ON q.agent_id = a.agent_id"
            " WHERE a.agent_id = :id AND q.queue = :q AND a.logged_in = 1",
            {"id": agent_id, "q": queue},
        )
        if known is None:
            await self._adopt(agent_id, queue, penalty, paused, reason)

    async def _adopt(
        self, agent_id: str, queue: str, penalty: int, paused: bool, reason: str
    ) -> None:
        async with self._store.transaction() as conn:
            await conn.execute(
                "INSERT INTO agents (agent_id, interface, logged_in, paused, pause_reason,"
                " updated_at) VALUES (:id, :iface, 1, :p, :r, :now)"
                " ON CONFLICT (agent_id) DO UPDATE SET logged_in = 1, paused = :p,"
                " pause_reason = :r, updated_at = :now",
                {
                    "id": agent_id,
                    "iface": interface_of(agent_id),
                    "p": int(paused),
                    "r": reason,
                    "now": _now(),
                },
            )
            await conn.execute(
                "INSERT INTO agent_queues (agent_id, queue, penalty) VALUES (:id, :q, :p)"
                " ON CONFLICT (agent_id, queue) DO NOTHING",
                {"id": agent_id, "q": queue, "p": penalty},
            )
        log.info("agent.adopted", agent_id=agent_id, queue=queue)

    async def _queue_add(self, agent_id: str, membership: QueueMembership) -> None:
        interface = interface_of(agent_id)
        try:
            await self._ami.action(
                "QueueAdd",
                Queue=membership.queue,
                Interface=interface,
                Penalty=membership.penalty,
                MemberName=agent_id,
                StateInterface=interface,
            )
        except AmiError as error:
            if "already" not in str(error).lower():
                raise AgentError(f"agent {agent_id}, queue {membership.queue}: {error}") from None

    def _queues_with(self, interface: str) -> list[str]:
        return [q.name for q in self._model.queues.values() if interface in q.members]
