"""Agents: login/logout/pause over AMI, persisted so that state survives restarts.

Dynamic queue members live in Asterisk (app_queue keeps them in astdb with
``persistentmembers``) and the intent lives in the store. After every AMI (re)connect,
``reconcile`` makes Asterisk match the store: an agent logged in while Asterisk restarted
without its astdb is added back; a member someone added behind our back (Asterisk CLI, a feature
code) is adopted into the store, because the agent is evidently working. In between,
``follow_store`` applies what other controllers changed in the store to this node's members
(``controller.agents.membership``): with several nodes, an agent's login, pause and logout
through any of them holds on all, also on a node whose controller was down meanwhile. An end of
wrap-up (``*47``) is a moment, not a position: ``follow_wrapup_ends`` reads the ends the other
controllers stored and rejoins the agent here if this node's app_queue holds it in wrap-up (its
call was here, while its ``*47`` reached another node: the proxy spreads an agent's calls). The
calls of another node are not this node's app_queue's to see: ``hold_for_calls_elsewhere`` holds
their agents here while they talk there (any call of their phone, a campaign's line or one
they placed too) and wrap up after a queue call (``membership.holds_for_calls_elsewhere``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.agents.membership import (
    FOLLOW_S,
    AddMember,
    MemberChange,
    NodeMember,
    RemoveMember,
    SetPause,
    holds_for_calls_elsewhere,
    member_changes,
)
from controller.agents.repository import StatusLogRepository
from controller.asterisk.ami import AmiClient, AmiError
from controller.asterisk.events import AmiEvent, QueueMemberAdded
from controller.inbound.repository import (
    AgentRepository,
    InboundCallRepository,
    QueueMembership,
)
from controller.inbound.site_queues import merge_views, views_by_queue
from controller.logs import get_logger
from controller.nodes.queue_views import NodeQueueViewRepository
from controller.pjsip import agent_interface, agent_of_interface
from controller.state.model import AgentState, LiveModel
from controller.store.base import Database
from controller.tasks import TaskSet

log = get_logger("agents")

# an end another controller commits late is still read: each look reaches this far back
WRAPUP_ENDS_LOOKBACK = timedelta(seconds=30)


class AgentError(Exception):
    """An agent command that cannot be carried out (unknown agent, no queue, AMI refused)."""


class AgentService:
    def __init__(
        self,
        ami: AmiClient,
        store: Database,
        model: LiveModel,
        default_queues: Callable[[str], Sequence[QueueMembership]],
        node: str,
    ) -> None:
        self._ami = ami
        self._agents = AgentRepository(store)
        self._node = node
        self._views = NodeQueueViewRepository(store)
        self._model = model
        self._default_queues = default_queues
        self._versions_followed: dict[str, str] = {}
        self._history = StatusLogRepository(store)
        self._calls = InboundCallRepository(store)
        # ends of wrap-up already followed (agent, when), and when they were last looked for;
        # those from before this controller's start are not its to follow
        self._wrapup_ends_followed: set[tuple[str, datetime]] = set()
        self._started = self._wrapup_ends_looked = self._now()
        self._tasks = TaskSet("agents")

    async def login(
        self, agent_id: str, queues: Sequence[QueueMembership] | None = None
    ) -> list[str]:
        memberships = list(queues or self._default_queues(agent_id))
        if not memberships:
            raise AgentError(f"agent {agent_id}: no queue given and none configured for it")
        for membership in memberships:
            await self._queue_add(agent_id, membership)
        await self._agents.log_in(agent_id, memberships, self._now())
        names = [m.queue for m in memberships]
        log.info("agent.logged_in", agent_id=agent_id, queues=names)
        return names

    async def logout(self, agent_id: str) -> None:
        for queue in await self._queues_of(agent_id):
            try:
                await self._queue_remove(agent_id, queue)
            except AmiError as error:
                raise AgentError(f"agent {agent_id}: {error}") from None
        if not await self._agents.log_out(agent_id, self._now()):
            raise AgentError(f"agent {agent_id} is not known (never logged in)")
        log.info("agent.logged_out", agent_id=agent_id)

    async def pause(self, agent_id: str, paused: bool, reason: str = "") -> None:
        interface = agent_interface(agent_id)
        if not await self._queues_of(agent_id):
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
        await self._agents.set_paused(agent_id, paused, reason, self._now())
        log.info("agent.paused" if paused else "agent.unpaused", agent_id=agent_id, reason=reason)

    async def rejoin(self, agent_id: str, *, followed: bool = False) -> None:
        """End the agent's wrap-up now: app_queue has no action for it and counts wrap-up from
        the member's last call, which a member removed and added again does not have (in
        every queue of the agent: ``shared_lastcall``). Its pause and reason are kept.
        ``followed``: it was ended through another controller (logged)."""
        for item in await self._agents.logged_in_memberships():
            if item.agent_id != agent_id:
                continue
            queue = item.membership.queue
            try:
                await self._queue_remove(agent_id, queue)
            except AmiError as error:
                raise AgentError(f"agent {agent_id}: {error}") from None
            await self._queue_add(agent_id, item.membership)
            if item.paused:
                await self._queue_pause(agent_id, queue, True, item.pause_reason)
        log.info("agent.wrapup_ended", agent_id=agent_id, followed=followed)

    async def list_agents(self) -> list[dict[str, Any]]:
        now = self._model.now()
        agents: dict[str, dict[str, Any]] = {
            agent.agent_id: {
                "agent_id": agent.agent_id,
                "logged_in": agent.logged_in,
                "paused": agent.paused,
                "pause_reason": agent.pause_reason,
                "queues": list(agent.queues),
                "state": {},
            }
            for agent in await self._agents.agents()
        }
        # each agent's state in each queue, site-wide: the busiest any node sees
        elsewhere = await self._views.fresh(self._node, self._now())
        for name, views in sorted(views_by_queue(self._model.queues, now, elsewhere).items()):
            for interface, state in merge_views(views).agents.items():
                agent_id = agent_of_interface(interface)
                if agent_id in agents:
                    agents[agent_id]["state"][name] = state.value
        return list(agents.values())

    async def reconcile(self) -> None:
        """Make Asterisk's dynamic members match the store (run after each resync). A member
        the store does not have was added here behind our back and is adopted, unless its
        agent's position changed since this node last followed it (while this controller was
        down): then the store wins. Following the store then adds, pauses and removes the
        rest, for every agent (Asterisk may have restarted without its astdb)."""
        wanted = {(s.agent_id, s.membership.queue)
                  for s in await self._agents.logged_in_memberships()}
        followed = await self._agents.followed_by(self._node)
        versions = await self._agents.versions()
        changed = {a for a, v in followed.items() if versions.get(a) != v}
        for queue in self._model.queues.values():
            for member in list(queue.members.values()):
                agent_id = agent_of_interface(member.interface)
                if agent_id is None or agent_id in changed or (agent_id, queue.name) in wanted:
                    continue
                await self._adopt(agent_id, queue.name, member.penalty,
                                  member.paused and not member.held,
                                  "" if member.held else member.paused_reason)
        self._versions_followed = {}
        await self.follow_store()

    async def run(self, in_sync: Callable[[], bool]) -> None:
        """Follow the store while the model is in sync with this node (after ``reconcile``)."""
        while True:
            await asyncio.sleep(FOLLOW_S)
            if in_sync():
                await self.follow_store()
                await self.follow_wrapup_ends()
                await self.hold_for_calls_elsewhere()

    async def follow_store(self) -> None:
        """Make this node's members of each agent whose stored position changed since the last
        look match it (another controller logged it in, paused or logged it out)."""
        versions = await self._agents.versions()
        changed = [a for a, v in versions.items() if self._versions_followed.get(a) != v]
        if not changed:
            return
        stored = await self._agents.logged_in_memberships()
        positions = {agent.agent_id: agent for agent in await self._agents.agents()}
        for agent_id in changed:
            position = positions.get(agent_id)
            interface = agent_interface(agent_id)
            # a member held for a wrap-up elsewhere is, as the agent's position goes, unpaused
            on_node = {q.name: NodeMember(m.paused and not m.held,
                                          "" if m.held else m.paused_reason)
                       for q in self._model.queues.values()
                       if (m := q.members.get(interface)) is not None}
            changes = member_changes(
                [m.membership for m in stored if m.agent_id == agent_id],
                bool(position and position.paused),
                position.pause_reason if position else "", on_node, self._model.queues)
            try:
                for change in changes:
                    await self._carry_out(agent_id, change)
            except AmiError as error:  # the next look tries again
                log.warning("agent.follow_failed", agent_id=agent_id, error=str(error))
                continue
            self._versions_followed[agent_id] = versions[agent_id]
            if changes:
                log.info("agent.followed", agent_id=agent_id,
                         changes=[type(c).__name__ + ":" + c.queue for c in changes])
        await self._agents.record_followed(
            self._node, {a: v for a, v in self._versions_followed.items() if a in changed})

    async def follow_wrapup_ends(self) -> None:
        """Rejoin here each agent that ended its wrap-up through any controller since the last
        look and that this node's app_queue still holds in wrap-up (a rejoin where it was
        ended already finds it available: nothing to do)."""
        now, since = self._now(), self._wrapup_ends_looked - WRAPUP_ENDS_LOOKBACK
        new = {end for end in await self._history.wrapup_ends(since)
               if end[1] >= self._started} - self._wrapup_ends_followed
        self._wrapup_ends_followed = {
            end for end in self._wrapup_ends_followed | new if end[1] >= since}
        self._wrapup_ends_looked = now
        for agent_id in sorted({agent_id for agent_id, _ in new}):
            if self._in_wrapup(agent_id):
                try:
                    await self.rejoin(agent_id, followed=True)
                except AgentError as error:  # app_queue refused: its wrap-up runs out instead
                    log.warning("agent.follow_failed", agent_id=agent_id, error=str(error))

    async def hold_for_calls_elsewhere(self) -> None:
        """Hold on this node each agent on a call on another node (``calls_elsewhere``), or
        whose queue call there ended less than a wrap-up ago, and let go of each held one
        whose call and wrap-up are over (its time, or an early end through any node)."""
        now = self._now()
        on_node: dict[str, dict[str, NodeMember]] = {}
        for queue in self._model.queues.values():
            for member in queue.members.values():
                if (agent_id := agent_of_interface(member.interface)) is not None:
                    on_node.setdefault(agent_id, {})[queue.name] = NodeMember(
                        member.paused, member.paused_reason, queue.wrapup_of(member))
        if not on_node:
            return
        longest = max(member.wrapup_s for queues in on_node.values() for member in queues.values())
        since = now - timedelta(seconds=longest)
        talking = await self.calls_elsewhere()
        call_ends = [(agent_id, ended.timestamp()) for agent_id, ended
                     in await self._history.call_ends_elsewhere(self._node, since)]
        early_ends = [(agent_id, ended.timestamp())
                      for agent_id, ended in await self._history.wrapup_ends(since)]
        holds = holds_for_calls_elsewhere(talking, call_ends, early_ends, on_node,
                                          now.timestamp())
        for agent_id, changes in holds.items():
            for change in changes:
                try:
                    await self._carry_out(agent_id, change)
                except AmiError as error:  # the next look tries again
                    log.warning("agent.hold_failed", agent_id=agent_id, queue=change.queue,
                                error=str(error))
                    continue
                log.info("agent.held" if change.paused else "agent.released",
                         agent_id=agent_id, queue=change.queue, reason=change.reason)

    async def calls_elsewhere(self) -> dict[str, list[str]]:
        """The agents with a call on another node, and those nodes (sorted): any call of the
        agent's phone that node's fresh view shows (a second late at most: a campaign's
        nailed-up line, one the agent placed, a queue call), and a queue call as the store has
        it from its answer on, before any view shows it."""
        now = self._now()
        nodes = {agent_id: set(there) for agent_id, there
                 in (await self._calls.talking_elsewhere(self._node, now)).items()}
        for interface, there in (await self._views.on_call_elsewhere(self._node, now)).items():
            if (agent_id := agent_of_interface(interface)) is not None:
                nodes.setdefault(agent_id, set()).update(there)
        return {agent_id: sorted(there) for agent_id, there in nodes.items()}

    def _in_wrapup(self, agent_id: str) -> bool:
        interface, now = agent_interface(agent_id), self._model.now()
        return any(member.own_state(now) is AgentState.WRAPUP
                   for queue in self._model.queues.values()
                   if (member := queue.members.get(interface)) is not None)

    async def _carry_out(self, agent_id: str, change: MemberChange) -> None:
        match change:
            case AddMember(queue=queue, penalty=penalty):
                await self._queue_add(agent_id, QueueMembership(queue, penalty))
            case RemoveMember(queue=queue):
                await self._queue_remove(agent_id, queue)
            case SetPause(queue=queue, paused=paused, reason=reason):
                await self._queue_pause(agent_id, queue, paused, reason)

    def on_ami_event(self, event: AmiEvent) -> None:
        """A member that appears after the resync (added at the Asterisk CLI, or during our
        reconnect) is adopted too, so the store never lags behind Asterisk."""
        if not isinstance(event, QueueMemberAdded):
            return
        if (agent_id := agent_of_interface(event.interface)) is not None:
            self._tasks.spawn(self._adopt_if_unknown(
                agent_id, event.queue,
                event.penalty or 0, event.paused is True, event.paused_reason or "",
            ))

    async def _adopt_if_unknown(
        self, agent_id: str, queue: str, penalty: int, paused: bool, reason: str
    ) -> None:
        if not await self._agents.is_logged_in_to(agent_id, queue):
            await self._adopt(agent_id, queue, penalty, paused, reason)

    async def _adopt(
        self, agent_id: str, queue: str, penalty: int, paused: bool, reason: str
    ) -> None:
        await self._agents.adopt(
            agent_id, QueueMembership(queue, penalty), paused, reason, self._now()
        )
        log.info("agent.adopted", agent_id=agent_id, queue=queue)

    async def _queue_add(self, agent_id: str, membership: QueueMembership) -> None:
        interface = agent_interface(agent_id)
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

    async def _queue_remove(self, agent_id: str, queue: str) -> None:
        try:
            await self._ami.action("QueueRemove", Queue=queue, Interface=agent_interface(agent_id))
        except AmiError as error:
            if "not" not in str(error).lower():  # "not in queue" is already the goal
                raise

    async def _queue_pause(self, agent_id: str, queue: str, paused: bool, reason: str) -> None:
        await self._ami.action("QueuePause", Interface=agent_interface(agent_id), Queue=queue,
                               Paused="true" if paused else "false", Reason=reason or None)

    async def _queues_of(self, agent_id: str) -> list[str]:
        """The queues the agent is logged in to: as stored, and as the live model shows it
        (added behind our back). The store is asked too because the model learns of a login
        only from the QueueMemberAdded event, which can arrive after the login has returned."""
        stored = await self._agents.agent(agent_id)
        interface = agent_interface(agent_id)
        in_model = {q.name for q in self._model.queues.values() if interface in q.members}
        return sorted(in_model.union(stored.queues if stored else ()))

    def _now(self) -> datetime:
        """The live model's clock (wall time in service, a test's clock in tests)."""
        return datetime.fromtimestamp(self._model.now(), UTC)
