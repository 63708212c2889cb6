"""The live model of Asterisk: channels, queues, their members (agents) and waiting callers.

Pure state: fed typed AMI events (``apply``) and list-action snapshots (``load_snapshot``) by the
sync service, with the clock injected, and no I/O. Everything else (router rules, metrics,
``callctl queue status``) reads it. After every reconnect the sync service rebuilds it from a
fresh snapshot, because events missed while disconnected cannot be replayed.

Wrap-up is app_queue's and no event marks it: a member is in wrap-up from its last call's end
for its own ``Wrapuptime`` if it has one, else its queue's ``wrapuptime``, which no AMI event
carries (the model is given the configured ones: the controller renders queues.conf from
them). ``shared_lastcall`` (always rendered) makes a call in one queue start the wrap-up in
every queue of the agent, as app_queue does. A snapshot's ``LastCall`` restores a wrap-up that
began before a reconnect. A member its controller holds (a pause with one of ``HOLD_REASONS``)
is on a call or in wrap-up on another node, which its node's app_queue cannot see
(``controller.agents.membership``): ``state`` counts the hold, ``own_state`` leaves it out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from controller.asterisk.events import (
    AgentComplete,
    AmiEvent,
    ChannelEvent,
    CoreShowChannel,
    Hangup,
    MemberEvent,
    Newchannel,
    Newexten,
    Newstate,
    QueueCallerJoin,
    QueueCallerLeave,
    QueueEntry,
    QueueMember,
    QueueMemberAdded,
    QueueMemberPause,
    QueueMemberRemoved,
    QueueMemberStatus,
    QueueParams,
)

Clock = Callable[[], float]

# app_queue member Status values (Asterisk device states, AST_DEVICE_*)
_RINGING = {6, 7}
_BUSY = {2, 3, 8}
_UNREACHABLE = {4, 5}
# the pauses a controller puts on a member while its agent talks on another node, and while
# its wrap-up after that call runs there
BUSY_HOLD_REASON = "busy-elsewhere"
WRAPUP_HOLD_REASON = "wrapup-elsewhere"
HOLD_REASONS = (BUSY_HOLD_REASON, WRAPUP_HOLD_REASON)


class AgentState(StrEnum):
    """An agent's live state, the one vocabulary of it: what a queue member is doing now (as
    ``Member.state`` derives it from Asterisk), what the queue snapshot gives the inbound rules,
    what ``callctl_agents`` counts and what the agents API shows."""

    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAPUP = "wrapup"
    PAUSED = "paused"
    UNAVAILABLE = "unavailable"


@dataclass
class Channel:
    """A live channel: the snapshot its latest AMI event carried (every channel event carries
    the whole snapshot), and when it appeared."""

    latest: ChannelEvent
    created_at: float

    @property
    def state(self) -> str:
        """``ChannelStateDesc``: Down, Ring, Ringing, Up, ..."""
        return self.latest.state_desc


@dataclass
class Caller:
    uniqueid: str
    channel: str
    queue: str
    position: int
    joined_at: float
    caller_num: str = ""


@dataclass
class Member:
    interface: str
    queue: str
    name: str = ""
    status: int = 1  # AST_DEVICE_NOT_INUSE
    paused: bool = False
    paused_reason: str = ""
    in_call: bool = False
    penalty: int = 0
    wrapup_s: float = 0.0  # the member's own Wrapuptime; 0: its queue's applies
    wrapup_until: float = 0.0
    state_since: float = 0.0

    @property
    def held(self) -> bool:
        """Paused by a controller for its agent's call or wrap-up on another node, not by the
        agent."""
        return self.paused and self.paused_reason in HOLD_REASONS

    def state(self, now: float) -> AgentState:
        """What the member is doing, holds included: held, it is on a call or in wrap-up as
        on the node that has the call, unless it rings or talks here (offered a call just
        before the hold)."""
        own = self.own_state(now)
        if not self.held or own is not AgentState.AVAILABLE:
            return own
        return (AgentState.ON_CALL if self.paused_reason == BUSY_HOLD_REASON
                else AgentState.WRAPUP)

    def own_state(self, now: float) -> AgentState:
        """What this node's app_queue has the member doing, a hold of ours left out: what
        its node tells the others (a hold comes from them)."""
        if self.paused and not self.held:
            return AgentState.PAUSED
        if self.status in _RINGING:
            return AgentState.RINGING
        if self.in_call or self.status in _BUSY:
            return AgentState.ON_CALL
        if self.status in _UNREACHABLE:
            return AgentState.UNAVAILABLE
        if now < self.wrapup_until:
            return AgentState.WRAPUP
        return AgentState.AVAILABLE


@dataclass
class Queue:
    name: str
    strategy: str = ""
    wrapup_s: float = 0.0  # the queue's wrapuptime, as configured
    callers: dict[str, Caller] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)

    def wrapup_of(self, member: Member) -> float:
        """How long ``member`` stays in wrap-up after a call in this queue."""
        return member.wrapup_s or self.wrapup_s

    def agents_by_state(self, now: float) -> dict[AgentState, int]:
        counts = dict.fromkeys(AgentState, 0)
        for member in self.members.values():
            counts[member.state(now)] += 1
        return counts

    def oldest_wait(self, now: float) -> float:
        return max((now - c.joined_at for c in self.callers.values()), default=0.0)


Listener = Callable[[str, str], None]
"""Called with (what changed, queue name or channel uniqueid) after every applied change."""


class LiveModel:
    def __init__(self, clock: Clock, queue_wrapup: Mapping[str, float] | None = None) -> None:
        """``queue_wrapup``: each queue's configured wrap-up seconds (absent: none)."""
        self._clock = clock
        self._queue_wrapup = dict(queue_wrapup or {})
        self.channels: dict[str, Channel] = {}
        self.queues: dict[str, Queue] = {}
        self._listeners: list[Listener] = []

    def now(self) -> float:
        return self._clock()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _changed(self, what: str, key: str) -> None:
        for listener in self._listeners:
            listener(what, key)

    def queue(self, name: str) -> Queue:
        if name not in self.queues:
            self.queues[name] = Queue(name, wrapup_s=self._queue_wrapup.get(name, 0.0))
        return self.queues[name]

    # -- snapshot -------------------------------------------------------------------------

    def load_snapshot(
        self,
        queue_status: Iterable[QueueParams | QueueMember | QueueEntry],
        channels: Iterable[CoreShowChannel],
    ) -> None:
        """Replace everything with the answers of QueueStatus and CoreShowChannels."""
        self.channels.clear()
        self.queues.clear()
        now = self._clock()
        for channel in channels:
            self._add_channel(channel, created_at=now - channel.duration_s)
        for item in queue_status:
            match item:
                case QueueParams(queue=name, strategy=strategy):
                    self.queue(name).strategy = strategy
                case QueueMember():
                    self._upsert_member(item)
                case QueueEntry():
                    self._add_caller(item, joined_at=now - item.wait_s)
        self._changed("snapshot", "")

    # -- events ---------------------------------------------------------------------------

    def apply(self, event: AmiEvent) -> bool:
        """Apply one AMI event; return whether the model cared about it."""
        match event:
            case Newchannel():
                self._add_channel(event, created_at=self._clock())
                self._changed("channel_new", event.uniqueid)
            case Newstate() | Newexten() if (
                channel := self.channels.get(event.uniqueid)
            ) is not None:
                channel.latest = event
            case Hangup():
                self._on_hangup(event.uniqueid)
            case QueueCallerJoin():
                self._add_caller(event, joined_at=self._clock())
                self._changed("caller_join", event.queue)
            case QueueCallerLeave():
                self._on_caller_leave(event)
            case QueueMemberAdded() | QueueMemberStatus() | QueueMemberPause():
                member = self._upsert_member(event)
                member.state_since = self._clock()
                self._changed("member", member.queue)
            case QueueMemberRemoved():
                queue = self.queue(event.queue)
                if queue.members.pop(event.interface, None) is not None:
                    self._changed("member", queue.name)
            case AgentComplete():
                self._on_agent_complete(event)
            case _:
                return False
        return True

    def _add_channel(self, e: ChannelEvent, created_at: float) -> None:
        self.channels[e.uniqueid] = Channel(latest=e, created_at=created_at)

    def _on_hangup(self, uid: str) -> None:
        self.channels.pop(uid, None)
        for queue in self.queues.values():
            if queue.callers.pop(uid, None) is not None:
                self._changed("caller_leave", queue.name)
        self._changed("channel_hangup", uid)

    def _add_caller(self, e: QueueCallerJoin | QueueEntry, joined_at: float) -> None:
        queue = self.queue(e.queue)
        queue.callers[e.uniqueid] = Caller(
            uniqueid=e.uniqueid,
            channel=e.channel,
            queue=queue.name,
            position=e.position or len(queue.callers) + 1,
            joined_at=joined_at,
            caller_num=e.caller_num,
        )

    def _on_caller_leave(self, e: QueueCallerLeave) -> None:
        queue = self.queue(e.queue)
        if queue.callers.pop(e.uniqueid, None) is not None:
            for position, caller in enumerate(
                sorted(queue.callers.values(), key=lambda c: c.position), start=1
            ):
                caller.position = position
            self._changed("caller_leave", queue.name)

    def _upsert_member(self, e: MemberEvent) -> Member:
        """A header the event left out (``None``) keeps the member's current value."""
        queue = self.queue(e.queue)
        member = queue.members.get(e.interface)
        if member is None:
            member = queue.members[e.interface] = Member(
                interface=e.interface, queue=queue.name, state_since=self._clock()
            )
        member.name = _or_kept(e.member_name, member.name)
        member.status = _or_kept(e.status, member.status)
        member.paused = _or_kept(e.paused, member.paused)
        reason = _or_kept(e.paused_reason, member.paused_reason)
        member.paused_reason = reason if member.paused else ""
        member.in_call = _or_kept(e.in_call, member.in_call)
        member.penalty = _or_kept(e.penalty, member.penalty)
        member.wrapup_s = float(_or_kept(e.wrapup_s, member.wrapup_s))
        if e.last_call:
            member.wrapup_until = max(member.wrapup_until, e.last_call + queue.wrapup_of(member))
        return member

    def _on_agent_complete(self, e: AgentComplete) -> None:
        """The call ended: the agent's wrap-up starts in every queue it is a member of
        (``shared_lastcall``)."""
        now = self._clock()
        for queue in self.queues.values():
            member = queue.members.get(e.interface)
            if member is None:
                continue
            if queue.name == e.queue:
                member.in_call = False
            member.wrapup_until = now + queue.wrapup_of(member)
            member.state_since = now
            self._changed("member", queue.name)


T = TypeVar("T")


def _or_kept(value: T | None, kept: T) -> T:
    return kept if value is None else value
