"""The agent status service: every change of an agent's status, from the phone, the CLI, the
API or the auto-pause, goes through ``apply``, which asks the machine
(``machine.agent_transition``) and carries out its decision.

Positions are read from the store (``AgentRepository``, the one record the controller and a
restart share); the queue actions go through ``AgentService`` (AMI QueueAdd/QueueRemove/
QueuePause with the reason, which app_queue writes to queue_log; then the store). After each
change the agent's BLF device states (``Custom:callctl-login-ID``, ``Custom:callctl-paused-ID``)
follow, so a phone subscribed to the hints gets a NOTIFY. One lock per agent keeps two ways in
from racing each other on one agent.

Feature codes arrive as Stasis channels (``dialplan.py``): the handler decides, tells the
dialplan which sound confirms it, and sends the channel back. A disposition keyed for a queue
call goes to ``DispositionService`` and, in wrap-up, ends it as ``*47`` does.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from controller.agents.config import AgentsConfig
from controller.agents.dialplan import SOUND_VARIABLE, login_device, paused_device
from controller.agents.dispositions import KeyedDisposition
from controller.agents.machine import (
    AgentEvent,
    AgentPosition,
    AgentStatus,
    AgentTransition,
    Answered,
    Change,
    EndWrapup,
    Pause,
    QueueAction,
    Refusal,
    RingNoAnswer,
    ToggleLogin,
    TogglePause,
    agent_transition,
)
from controller.agents.repository import StatusLogRepository
from controller.asterisk.ami import AmiError
from controller.asterisk.events import (
    AgentConnect,
    AgentRingNoAnswer,
    AmiEvent,
    HangupRequest,
    StasisStart,
)
from controller.inbound.agents import AgentError
from controller.inbound.repository import AgentRepository, QueueMembership, StoredAgent
from controller.logs import get_logger
from controller.pjsip import agent_of_interface
from controller.store.base import Database, StoreError
from controller.tasks import TaskSet

log = get_logger("agents.status")

USER_BUSY = 17  # Q.850 cause of a 486 Busy Here
# busy channels kept until their offer's AgentRingNoAnswer comes (right after); a channel
# busy outside a queue has none, so only the latest are kept
BUSY_OFFERS_KEPT = 64
SOUND_LOGGED_IN = "agent-loginok"
SOUND_LOGGED_OUT = "agent-loggedoff"
SOUND_PAUSED = "activated"
SOUND_UNPAUSED = "de-activated"
SOUND_REFUSED = "beeperr"
SOUND_WRAPUP_ENDED = "beep"
SOUND_DISPOSED = "auth-thankyou"


class MembershipPort(Protocol):
    """Queue membership in Asterisk and the store (``inbound.agents.AgentService``)."""

    async def login(
        self, agent_id: str, queues: Sequence[QueueMembership] | None = None
    ) -> list[str]: ...

    async def logout(self, agent_id: str) -> None: ...

    async def pause(self, agent_id: str, paused: bool, reason: str = "") -> None: ...

    async def rejoin(self, agent_id: str) -> None: ...


class DispositionPort(Protocol):
    """The dispositions of queue calls (``agents.dispositions.DispositionService``)."""

    async def key(self, agent_id: str, key: str) -> KeyedDisposition | Refusal: ...


class DeviceStatePort(Protocol):
    async def set_device_state(self, device: str, in_use: bool) -> None: ...


class FeatureChannelPort(Protocol):
    async def continue_with(self, channel_id: str, variables: dict[str, str]) -> None:
        """Set the channel's variables (the confirmation sound) and send it back to its
        dialplan."""


def position_of(stored: StoredAgent | None) -> AgentPosition:
    if stored is None or not stored.logged_in:
        return AgentPosition()
    if stored.paused:
        return AgentPosition(AgentStatus.PAUSED, stored.pause_reason)
    return AgentPosition(AgentStatus.AVAILABLE)


def confirmation_sound(decision: AgentTransition | KeyedDisposition) -> str:
    if isinstance(decision, Refusal):
        return SOUND_REFUSED
    if isinstance(decision, KeyedDisposition):
        return SOUND_DISPOSED
    if QueueAction.REJOIN in decision.actions:
        return SOUND_WRAPUP_ENDED
    return {AgentStatus.AVAILABLE: SOUND_UNPAUSED if QueueAction.UNPAUSE in decision.actions
            else SOUND_LOGGED_IN,
            AgentStatus.PAUSED: SOUND_PAUSED,
            AgentStatus.LOGGED_OUT: SOUND_LOGGED_OUT}[decision.position.status]


class AgentStatusService:
    def __init__(
        self, config: AgentsConfig, agents: MembershipPort, store: Database,
        devices: DeviceStatePort, channels: FeatureChannelPort, dispositions: DispositionPort,
        agent_ids: Collection[str], clock: Callable[[], datetime],
    ) -> None:
        self._config = config
        self._history = StatusLogRepository(store)
        self._now = clock
        self._agent_ids = agent_ids  # every agent with a phone and BLF hints
        self._agents = agents
        self._repository = AgentRepository(store)
        self._devices = devices
        self._channels = channels
        self._dispositions = dispositions
        self._missed: dict[str, Mapping[str, int]] = {}
        self._busy_offers: deque[str] = deque(maxlen=BUSY_OFFERS_KEPT)
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks = TaskSet("agents.status")

    async def position(self, agent_id: str) -> AgentPosition:
        stored = position_of(await self._repository.agent(agent_id))
        return AgentPosition(stored.status, stored.reason, self._missed.get(agent_id, {}))

    async def queues_of(self, agent_id: str) -> tuple[str, ...]:
        """The queues the agent is logged in to, as stored."""
        stored = await self._repository.agent(agent_id)
        return stored.queues if stored else ()

    async def apply(
        self, agent_id: str, event: AgentEvent, queues: Sequence[QueueMembership] | None = None,
        *, by: str = "",
    ) -> AgentTransition:
        """Decide ``event`` for ``agent_id`` and carry it out; a ``Refusal`` changes nothing.
        ``queues`` overrides the agent's configured queues on a login; ``by`` names the
        supervisor who asked (logged)."""
        async with self._locks[agent_id]:
            before = await self.position(agent_id)
            decision = agent_transition(before, event, self._config.auto_pause)
            if isinstance(decision, Refusal):
                log.info("agent.refused", agent_id=agent_id, cause=type(event).__name__,
                         why=decision.why)
                return decision
            after = decision.position
            for action in decision.actions:
                await self._carry_out(agent_id, action, after.reason, queues)
            if QueueAction.REJOIN in decision.actions:  # the stats cut the wrap-up here
                await self._history.record_wrapup_end(agent_id, self._now())
            self._missed[agent_id] = after.missed
            if after.status is not before.status or after.reason != before.reason:
                await self._history.record(agent_id, after.status, after.reason, self._now())
                await self._show(agent_id, after)
                log.info("agent.status", agent_id=agent_id, cause=type(event).__name__,
                         status=after.status.value, reason=after.reason, by=by or None)
            return decision

    async def _carry_out(
        self, agent_id: str, action: QueueAction, reason: str,
        queues: Sequence[QueueMembership] | None,
    ) -> None:
        match action:
            case QueueAction.JOIN:
                await self._agents.login(agent_id, queues)
            case QueueAction.LEAVE:
                await self._agents.logout(agent_id)
            case QueueAction.PAUSE:
                await self._agents.pause(agent_id, True, reason)
            case QueueAction.UNPAUSE:
                await self._agents.pause(agent_id, False)
            case QueueAction.REJOIN:
                await self._agents.rejoin(agent_id)

    async def _show(self, agent_id: str, position: AgentPosition) -> None:
        """The BLF keys; a failure is logged, never undoes the change it shows."""
        try:
            await self._devices.set_device_state(
                login_device(agent_id), position.status is not AgentStatus.LOGGED_OUT)
            await self._devices.set_device_state(
                paused_device(agent_id), position.status is AgentStatus.PAUSED)
        except AmiError as error:
            log.warning("agent.device_state_failed", agent_id=agent_id, error=str(error))

    async def show_all(self) -> None:
        """Every configured agent's BLF keys from the store (after each AMI resync: Asterisk
        may have restarted without its astdb)."""
        stored = {agent.agent_id: agent for agent in await self._repository.agents()}
        for agent_id in self._agent_ids:
            await self._show(agent_id, position_of(stored.get(agent_id)))

    # ---- the phone ----------------------------------------------------------------------
    def on_feature(self, event: StasisStart) -> None:
        """``Stasis(app, agent-feature, ACTION, ARGUMENT, ENDPOINT)`` from the feature context."""
        self._tasks.spawn(self._feature(event))

    async def _feature(self, event: StasisStart) -> None:
        _, action, argument, endpoint = (*event.args, "", "", "")[:4]
        channel = event.channel.id
        sound = SOUND_REFUSED
        try:
            decision = await self._phone_decision(endpoint, action, argument)
            sound = confirmation_sound(decision)
        except (AgentError, AmiError, StoreError) as error:
            log.warning("agent.feature_failed", agent_id=endpoint, action=action,
                        channel=channel, error=str(error))
        finally:
            await self._channels.continue_with(channel, {SOUND_VARIABLE: sound})

    async def _phone_decision(
        self, agent_id: str, action: str, argument: str
    ) -> AgentTransition | KeyedDisposition:
        if agent_id not in self._agent_ids:
            return Refusal(f"endpoint {agent_id!r} is not a configured agent")
        match action:
            case "login_toggle":
                return await self.apply(agent_id, ToggleLogin())
            case "pause_toggle":
                return await self.apply(agent_id, TogglePause())
            case "end_wrapup":
                return await self.apply(agent_id, EndWrapup())
            case "disposition":
                keyed = await self._dispositions.key(agent_id, argument)
                if isinstance(keyed, KeyedDisposition) and keyed.ends_wrapup:
                    await self.apply(agent_id, EndWrapup())
                return keyed
            case "pause" if argument.isdigit() and (
                    reason := self._config.reason_of_code(int(argument))):
                return await self.apply(agent_id, Pause(reason))
            case _:
                return Refusal(f"no feature {action!r} {argument!r}")

    # ---- queue events -------------------------------------------------------------------
    def on_ami_event(self, event: AmiEvent) -> None:
        """Unanswered and answered rings feed the auto-pause count. An offer answered busy is
        not a missed ring: behind the site's proxy that is an agent on a call of another node
        (the proxy's 486). app_queue reports it as an AgentRingNoAnswer like any other (its
        DialEnd says NOANSWER); the offer's channel asked to hang up with cause 17 just
        before, and that tells them apart."""
        if not self._config.auto_pause:
            return
        if isinstance(event, HangupRequest):
            if event.cause == USER_BUSY:
                self._busy_offers.append(event.uniqueid)
            return
        if isinstance(event, AgentRingNoAnswer) and event.dest_uniqueid in self._busy_offers:
            self._busy_offers.remove(event.dest_uniqueid)
            log.info("agent.offer_busy", interface=event.interface, queue=event.queue,
                     uniqueid=event.uniqueid)
            return
        if isinstance(event, AgentRingNoAnswer | AgentConnect):
            agent_id = agent_of_interface(event.interface)
            if agent_id is None or event.queue not in self._config.auto_pause:
                return
            ring = (RingNoAnswer(event.queue) if isinstance(event, AgentRingNoAnswer)
                    else Answered(event.queue))
            self._tasks.spawn(self._count(agent_id, ring))

    async def _count(self, agent_id: str, event: RingNoAnswer | Answered) -> None:
        try:
            decision = await self.apply(agent_id, event)
        except (AgentError, AmiError) as error:
            log.warning("agent.auto_pause_failed", agent_id=agent_id, error=str(error))
            return
        if isinstance(decision, Change) and QueueAction.PAUSE in decision.actions:
            log.info("agent.auto_paused", agent_id=agent_id, queue=event.queue)
