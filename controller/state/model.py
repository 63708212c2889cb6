"""The live model of Asterisk: channels, queues, their members (agents) and waiting callers.

Pure state: fed AMI events (``apply``) and list-action snapshots (``load_snapshot``) by the
sync service, with the clock injected, and no I/O. Everything else (router rules, metrics,
``callctl queue status``) reads it. After every reconnect the sync service rebuilds it from a
fresh snapshot, because events missed while disconnected cannot be replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Event = Mapping[str, Any]
Clock = Callable[[], float]

# app_queue member Status values (Asterisk device states)
_RINGING = {"6", "7"}
_BUSY = {"2", "3", "8"}
_UNREACHABLE = {"4", "5"}


class AgentState(StrEnum):
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAPUP = "wrapup"
    PAUSED = "paused"
    UNAVAILABLE = "unavailable"


@dataclass
class Channel:
    uniqueid: str
    name: str
    linkedid: str
    caller_num: str = ""
    context: str = ""
    exten: str = ""
    state: str = ""
    created_at: float = 0.0


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
    status: str = "1"
    paused: bool = False
    paused_reason: str = ""
    in_call: bool = False
    penalty: int = 0
    wrapup_until: float = 0.0
    state_since: float = 0.0

    def state(self, now: float) -> AgentState:
        if self.paused:
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
    wrapup_s: float = 0.0
    callers: dict[str, Caller] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)

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
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
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
            self.queues[name] = Queue(name)
        return self.queues[name]

    # -- snapshot -------------------------------------------------------------------------

    def load_snapshot(self, queue_status: Iterable[Event], channels: Iterable[Event]) -> None:
        """Replace everything with the answers of QueueStatus and CoreShowChannels."""
        self.channels.clear()
        self.queues.clear()
        now = self._clock()
        for item in channels:
            if item.get("Event") == "CoreShowChannel":
                duration = _hms_seconds(item.get("Duration", "0"))
                self._add_channel(item, created_at=now - duration)
        for item in queue_status:
            kind = item.get("Event")
            if kind == "QueueParams":
                self.queue(item["Queue"]).strategy = item.get("Strategy", "")
            elif kind == "QueueMember":
                self._upsert_member(item)
            elif kind == "QueueEntry":
                self._add_caller(item, joined_at=now - float(item.get("Wait") or 0))
        self._changed("snapshot", "")

    # -- events ---------------------------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Apply one AMI event; return whether the model cared about it."""
        handler = _HANDLERS.get(event.get("Event", ""))
        if handler is None:
            return False
        handler(self, event)
        return True

    def _add_channel(self, e: Event, created_at: float) -> None:
        uid = e.get("Uniqueid", "")
        if not uid:
            return
        self.channels[uid] = Channel(
            uniqueid=uid,
            name=e.get("Channel", ""),
            linkedid=e.get("Linkedid", uid),
            caller_num=e.get("CallerIDNum", ""),
            context=e.get("Context", ""),
            exten=e.get("Exten", e.get("Extension", "")),
            state=e.get("ChannelStateDesc", ""),
            created_at=created_at,
        )

    def _on_newchannel(self, e: Event) -> None:
        self._add_channel(e, created_at=self._clock())
        self._changed("channel_new", e.get("Uniqueid", ""))

    def _on_newstate(self, e: Event) -> None:
        channel = self.channels.get(e.get("Uniqueid", ""))
        if channel is not None:
            channel.state = e.get("ChannelStateDesc", channel.state)

    def _on_newexten(self, e: Event) -> None:
        channel = self.channels.get(e.get("Uniqueid", ""))
        if channel is not None:
            channel.context = e.get("Context", channel.context)
            channel.exten = e.get("Extension", e.get("Exten", channel.exten))

    def _on_hangup(self, e: Event) -> None:
        uid = e.get("Uniqueid", "")
        self.channels.pop(uid, None)
        for queue in self.queues.values():
            if queue.callers.pop(uid, None) is not None:
                self._changed("caller_leave", queue.name)
        self._changed("channel_hangup", uid)

    def _add_caller(self, e: Event, joined_at: float) -> None:
        queue = self.queue(e["Queue"])
        uid = e.get("Uniqueid", "")
        queue.callers[uid] = Caller(
            uniqueid=uid,
            channel=e.get("Channel", ""),
            queue=queue.name,
            position=int(e.get("Position") or len(queue.callers) + 1),
            joined_at=joined_at,
            caller_num=e.get("CallerIDNum", ""),
        )

    def _on_caller_join(self, e: Event) -> None:
        self._add_caller(e, joined_at=self._clock())
        self._changed("caller_join", e["Queue"])

    def _on_caller_leave(self, e: Event) -> None:
        queue = self.queue(e["Queue"])
        if queue.callers.pop(e.get("Uniqueid", ""), None) is not None:
            for position, caller in enumerate(
                sorted(queue.callers.values(), key=lambda c: c.position), start=1
            ):
                caller.position = position
            self._changed("caller_leave", queue.name)

    def _upsert_member(self, e: Event) -> Member:
        queue = self.queue(e["Queue"])
        interface = e.get("Interface") or e.get("Location") or e.get("StateInterface", "")
        member = queue.members.get(interface)
        if member is None:
            member = queue.members[interface] = Member(
                interface=interface, queue=queue.name, state_since=self._clock()
            )
        member.name = e.get("MemberName", e.get("Name", member.name))
        member.status = e.get("Status", member.status)
        member.paused = e.get("Paused", "1" if member.paused else "0") == "1"
        member.paused_reason = e.get("PausedReason", member.paused_reason) if member.paused else ""
        member.in_call = e.get("InCall", "1" if member.in_call else "0") == "1"
        member.penalty = int(e.get("Penalty") or member.penalty)
        wrapup = e.get("Wrapuptime")
        if wrapup not in (None, "", "0"):
            queue.wrapup_s = float(wrapup)
        return member

    def _on_member_change(self, e: Event) -> None:
        member = self._upsert_member(e)
        member.state_since = self._clock()
        self._changed("member", member.queue)

    def _on_member_removed(self, e: Event) -> None:
        queue = self.queue(e["Queue"])
        interface = e.get("Interface") or e.get("Location", "")
        if queue.members.pop(interface, None) is not None:
            self._changed("member", queue.name)

    def _on_agent_complete(self, e: Event) -> None:
        queue = self.queue(e["Queue"])
        member = queue.members.get(e.get("Interface", ""))
        if member is not None:
            member.in_call = False
            member.wrapup_until = self._clock() + queue.wrapup_s
            member.state_since = self._clock()
            self._changed("member", queue.name)


def _hms_seconds(value: str) -> float:
    """CoreShowChannel's Duration is HH:MM:SS."""
    try:
        hours, minutes, seconds = (int(part) for part in value.split(":"))
    except ValueError:
        return 0.0
    return float(hours * 3600 + minutes * 60 + seconds)


_HANDLERS: dict[str, Callable[[LiveModel, Event], None]] = {
    "Newchannel": LiveModel._on_newchannel,
    "Newstate": LiveModel._on_newstate,
    "Newexten": LiveModel._on_newexten,
    "Hangup": LiveModel._on_hangup,
    "QueueCallerJoin": LiveModel._on_caller_join,
    "QueueCallerLeave": LiveModel._on_caller_leave,
    "QueueMemberAdded": LiveModel._on_member_change,
    "QueueMemberStatus": LiveModel._on_member_change,
    "QueueMemberPause": LiveModel._on_member_change,
    "QueueMemberRemoved": LiveModel._on_member_removed,
    "AgentComplete": LiveModel._on_agent_complete,
}
