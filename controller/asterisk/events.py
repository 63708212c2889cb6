"""Asterisk events as types: each AMI or ARI event is parsed once, where it arrives.

The controller hands services frozen, slotted dataclasses, never the raw header mapping or JSON
object, so a service matches on a type (``case Hangup(uniqueid=uid, cause=cause)``) and a header
Asterisk renamed or left out fails here, named, instead of as a ``KeyError`` deep in a service.
An event that adds no field to its base is a plain subclass with ``__slots__ = ()``: still
frozen and slotted.

What is rejected (``RejectedEvent``: logged and counted as ``callctl_events_rejected_total``,
never passed on) and what is not:

- *malformed*: a type we model lacks a header we require (``missing_field``), or a number is not
  a number (``bad_value``), or the message names no event at all (``not_an_event``);
- *unknown*: an ARI ``type`` that is not in ARI's schema (``rest-api/events.json``), which means
  the peer is not the Asterisk we were written for (``unknown_type``). AMI has hundreds of events
  and modules add their own, so an AMI name we do not model is not an error.

An event of a known kind that no service reads arrives as ``UnhandledAmi`` / ``UnhandledAri``:
not counted as rejected. Required fields are the ones a service cannot do without (a channel's
Uniqueid, a queue's name); the rest default to what Asterisk sends when it has nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from controller.logs import get_logger

log = get_logger("asterisk.events")

Source = Literal["ami", "ari"]
RejectReason = Literal["not_an_event", "unknown_type", "missing_field", "bad_value"]
REJECT_REASONS: tuple[RejectReason, ...] = (
    "not_an_event", "unknown_type", "missing_field", "bad_value"
)


class RejectedEvent(Exception):
    """An event that cannot be parsed: ``name`` is its AMI Event / ARI type ("" if none)."""

    def __init__(self, source: Source, name: str, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{source} event {name or '?'}: {detail}")
        self.source: Source = source
        self.name = name
        self.reason: RejectReason = reason
        self.detail = detail


RejectHandler = Callable[[RejectedEvent], None]


def log_rejected(rejected: RejectedEvent) -> None:
    """The clients' default for a rejected event: a warning naming it (the app also counts)."""
    log.warning("asterisk.event_rejected", source=rejected.source, asterisk_event=rejected.name,
                reason=rejected.reason, detail=rejected.detail)


# -- AMI ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEvent:
    """The channel snapshot every channel-related AMI event carries (``Channel``, ``Uniqueid``,
    ...). ``channel`` is the channel's name (``PJSIP/trunk-00000001``)."""

    uniqueid: str
    channel: str
    linkedid: str
    state_desc: str = ""
    caller_num: str = ""
    context: str = ""
    exten: str = ""
    priority: int = 0


class Newchannel(ChannelEvent):
    """A channel was created."""

    __slots__ = ()


class Newstate(ChannelEvent):
    """A channel's state changed (``state_desc``: Ringing, Up, ...)."""

    __slots__ = ()


class Newexten(ChannelEvent):
    """A channel moved on in the dialplan (``context``, ``exten``, ``priority``)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup(ChannelEvent):
    cause: int
    cause_txt: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HangupRequest(ChannelEvent):
    """Something asked for the channel's hangup, with ``cause``: for a dialed channel, the
    far end's refusal (17: busy) comes as this before app_queue ends the offer."""

    cause: int | None = None


class MixMonitorStart(ChannelEvent):
    """MixMonitor began recording the channel."""

    __slots__ = ()


class MixMonitorStop(ChannelEvent):
    """MixMonitor closed the channel's recording."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MixMonitorMute(ChannelEvent):
    direction: str
    muted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CallctlPickedUp(ChannelEvent):
    """``UserEvent: CallctlPickedUp`` from the dialer's dialplan: an attempt's line answered
    (AMD, if on, starts listening)."""

    attempt: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallctlAmd(ChannelEvent):
    """``UserEvent: CallctlAmd`` from the dialer's dialplan: AMD() heard a machine."""

    attempt: str
    amd_cause: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfEnd(ChannelEvent):
    """A DTMF key ended on the channel; ``received``: pressed by its far end (an agent on the
    nailed-up leg), not sent to it."""

    digit: str
    received: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreShowChannel(ChannelEvent):
    """One channel of the ``CoreShowChannels`` list (the resync snapshot)."""

    duration_s: float
    application: str = ""
    bridge_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerJoin(ChannelEvent):
    queue: str
    position: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerLeave(ChannelEvent):
    queue: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerAbandon(ChannelEvent):
    queue: str
    hold_time_s: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentEvent(ChannelEvent):
    """An Agent* queue event: the caller's channel, the queue and the member offered the call
    (``dest_uniqueid``: the member's channel)."""

    queue: str
    member_name: str = ""
    interface: str = ""
    dest_uniqueid: str = ""


class AgentCalled(AgentEvent):
    """A member's phone rings for the caller."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConnect(AgentEvent):
    ring_time_s: int = 0  # AgentConnect counts seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentComplete(AgentEvent):
    talk_time_s: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRingNoAnswer(AgentEvent):
    ring_time_ms: int = 0  # AgentRingNoAnswer counts milliseconds


class AgentDump(AgentEvent):
    """The caller hung up while a member's phone rang."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberEvent:
    """A queue member's state (QueueMemberAdded/Status/Pause, and the QueueMember entry of
    ``QueueStatus``). A header left out is ``None``: the member keeps what it had."""

    queue: str
    interface: str
    member_name: str | None = None
    status: int | None = None  # an Asterisk device state (AST_DEVICE_*)
    paused: bool | None = None
    paused_reason: str | None = None
    in_call: bool | None = None
    penalty: int | None = None
    wrapup_s: int | None = None  # the member's own wrap-up; 0: the queue's applies
    last_call: int | None = None  # when its last call ended (Unix seconds); 0: none yet


class QueueMemberAdded(MemberEvent):
    """A member joined the queue."""

    __slots__ = ()


class QueueMemberStatus(MemberEvent):
    """A member's device state or counters changed."""

    __slots__ = ()


class QueueMemberPause(MemberEvent):
    """A member was paused or unpaused."""

    __slots__ = ()


class QueueMember(MemberEvent):
    """A member in the ``QueueStatus`` list (``Location`` and ``Name`` there)."""

    __slots__ = ()



@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberRemoved:
    queue: str
    interface: str
    member_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueParams:
    """A queue in the ``QueueStatus`` list."""

    queue: str
    strategy: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEntry:
    """A waiting caller in the ``QueueStatus`` list; ``wait_s``: seconds waited so far."""

    queue: str
    uniqueid: str
    channel: str = ""
    position: int | None = None
    caller_num: str = ""
    wait_s: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginateResponse:
    """The fate of an ``Async`` Originate; ``reason`` is the dial result code (0 for a 486
    busy: classify a call by its Hangup cause, not by this)."""

    action_id: str
    response: str
    reason: int | None = None
    channel: str = ""
    uniqueid: str = ""

    @property
    def failed(self) -> bool:
        return self.response == "Failure"


@dataclass(frozen=True, slots=True, kw_only=True)
class DBGetResponse:
    """The answer event of an AMI ``DBGet`` (an event list in Asterisk 22)."""

    family: str
    key: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChanSpyStart:
    """``spyer_channel`` (running ChanSpy) started spying on the channel ``spyee_uniqueid``."""

    spyer_channel: str
    spyee_uniqueid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnhandledAmi:
    """An AMI event no service reads (``ami_name``: its Event header)."""

    ami_name: str


AmiEvent = (
    Newchannel | Newstate | Newexten | Hangup | HangupRequest | MixMonitorStart | MixMonitorStop
    | MixMonitorMute | CallctlPickedUp | CallctlAmd | DtmfEnd | CoreShowChannel | QueueCallerJoin
    | QueueCallerLeave
    | QueueCallerAbandon | AgentCalled | AgentConnect | AgentComplete | AgentRingNoAnswer
    | AgentDump | QueueMemberAdded | QueueMemberStatus | QueueMemberPause | QueueMember
    | QueueMemberRemoved | QueueParams | QueueEntry | OriginateResponse | DBGetResponse
    | ChanSpyStart | UnhandledAmi
)


class _Headers:
    """Typed reads of one AMI message; a failed read raises ``RejectedEvent`` naming the header."""

    def __init__(self, raw: Mapping[str, Any], name: str) -> None:
        self._raw = raw
        self.name = name

    def _reject(self, reason: RejectReason, detail: str) -> RejectedEvent:
        return RejectedEvent("ami", self.name, reason, detail)

    def text(self, *keys: str) -> str:
        """The first of ``keys`` present and non-empty (older and newer header names)."""
        for key in keys:
            value = self._raw.get(key)
            if value not in (None, ""):
                return str(value)
        raise self._reject("missing_field", f"no {' or '.join(keys)} header")

    def get(self, key: str, default: str = "") -> str:
        value = self._raw.get(key)
        return default if value is None else str(value)

    def maybe(self, *keys: str) -> str | None:
        """The first of ``keys`` present (even empty), or ``None``."""
        for key in keys:
            value = self._raw.get(key)
            if value is not None:
                return str(value)
        return None

    def integer(self, key: str) -> int:
        return self._int(key, self.text(key))

    def maybe_integer(self, key: str) -> int | None:
        value = self._raw.get(key)
        return None if value in (None, "") else self._int(key, str(value))

    def _int(self, key: str, value: str) -> int:
        try:
            return int(value)
        except ValueError:
            raise self._reject("bad_value", f"{key}: not an integer: {value!r}") from None

    def flag(self, key: str) -> bool | None:
        value = self._raw.get(key)
        if value in (None, ""):
            return None
        if str(value).lower() in ("1", "true", "yes"):
            return True
        if str(value).lower() in ("0", "false", "no"):
            return False
        raise self._reject("bad_value", f"{key}: not a flag: {value!r}")


class _Channel(TypedDict):
    uniqueid: str
    channel: str
    linkedid: str
    state_desc: str
    caller_num: str
    context: str
    exten: str
    priority: int


def _channel(h: _Headers) -> _Channel:
    uniqueid = h.text("Uniqueid")
    return _Channel(
        uniqueid=uniqueid,
        channel=h.get("Channel"),
        linkedid=h.get("Linkedid", uniqueid),
        state_desc=h.get("ChannelStateDesc"),
        caller_num=h.get("CallerIDNum"),
        context=h.get("Context"),
        # Newexten names it Extension, the channel snapshot Exten
        exten=h.get("Exten") or h.get("Extension"),
        priority=h.maybe_integer("Priority") or 0,
    )


class _Agent(TypedDict):
    queue: str
    member_name: str
    interface: str
    dest_uniqueid: str


def _agent(h: _Headers) -> _Agent:
    return _Agent(
        queue=h.text("Queue"),
        member_name=h.get("MemberName"),
        interface=h.get("Interface"),
        dest_uniqueid=h.get("DestUniqueid"),
    )


class _Member(TypedDict):
    queue: str
    interface: str
    member_name: str | None
    status: int | None
    paused: bool | None
    paused_reason: str | None
    in_call: bool | None
    penalty: int | None
    wrapup_s: int | None
    last_call: int | None


def _member(h: _Headers) -> _Member:
    """Member fields under either naming: events say Interface/MemberName, the QueueStatus
    list says Location/Name."""
    return _Member(
        queue=h.text("Queue"),
        interface=h.text("Interface", "Location", "StateInterface"),
        member_name=h.maybe("MemberName", "Name"),
        status=h.maybe_integer("Status"),
        paused=h.flag("Paused"),
        paused_reason=h.maybe("PausedReason"),
        in_call=h.flag("InCall"),
        penalty=h.maybe_integer("Penalty"),
        wrapup_s=h.maybe_integer("Wrapuptime"),
        last_call=h.maybe_integer("LastCall"),
    )


def _hms_seconds(h: _Headers, key: str) -> float:
    """CoreShowChannel's Duration is HH:MM:SS."""
    value = h.get(key, "0:0:0")
    try:
        hours, minutes, seconds = (int(part) for part in value.split(":"))
    except ValueError:
        raise RejectedEvent("ami", h.name, "bad_value", f"{key}: not HH:MM:SS: {value!r}") from None
    return float(hours * 3600 + minutes * 60 + seconds)


def _user_event(h: _Headers) -> AmiEvent:
    if h.get("UserEvent") == "CallctlPickedUp":
        return CallctlPickedUp(**_channel(h), attempt=h.text("Attempt"))
    if h.get("UserEvent") == "CallctlAmd":
        return CallctlAmd(**_channel(h), attempt=h.text("Attempt"), amd_cause=h.get("Cause"))
    return UnhandledAmi(ami_name="UserEvent")


_AMI_PARSERS: dict[str, Callable[[_Headers], AmiEvent]] = {
    "Newchannel": lambda h: Newchannel(**_channel(h)),
    "Newstate": lambda h: Newstate(**_channel(h)),
    "Newexten": lambda h: Newexten(**_channel(h)),
    "Hangup": lambda h: Hangup(
        **_channel(h), cause=h.integer("Cause"), cause_txt=h.get("Cause-txt")
    ),
    "HangupRequest": lambda h: HangupRequest(**_channel(h), cause=h.maybe_integer("Cause")),
    "MixMonitorStart": lambda h: MixMonitorStart(**_channel(h)),
    "MixMonitorStop": lambda h: MixMonitorStop(**_channel(h)),
    "MixMonitorMute": lambda h: MixMonitorMute(
        **_channel(h), direction=h.get("Direction"), muted=h.flag("State") is True
    ),
    "UserEvent": _user_event,
    "DTMFEnd": lambda h: DtmfEnd(
        **_channel(h), digit=h.text("Digit"), received=h.get("Direction") == "Received"
    ),
    "CoreShowChannel": lambda h: CoreShowChannel(
        **_channel(h),
        duration_s=_hms_seconds(h, "Duration"),
        application=h.get("Application"),
        bridge_id=h.get("BridgeId"),
    ),
    "QueueCallerJoin": lambda h: QueueCallerJoin(
        **_channel(h), queue=h.text("Queue"), position=h.maybe_integer("Position")
    ),
    "QueueCallerLeave": lambda h: QueueCallerLeave(**_channel(h), queue=h.text("Queue")),
    "QueueCallerAbandon": lambda h: QueueCallerAbandon(
        **_channel(h), queue=h.text("Queue"), hold_time_s=h.maybe_integer("HoldTime") or 0
    ),
    "AgentCalled": lambda h: AgentCalled(**_channel(h), **_agent(h)),
    "AgentConnect": lambda h: AgentConnect(
        **_channel(h), **_agent(h), ring_time_s=h.maybe_integer("RingTime") or 0
    ),
    "AgentComplete": lambda h: AgentComplete(
        **_channel(h), **_agent(h),
        talk_time_s=h.maybe_integer("TalkTime") or 0, reason=h.get("Reason"),
    ),
    "AgentRingNoAnswer": lambda h: AgentRingNoAnswer(
        **_channel(h), **_agent(h), ring_time_ms=h.maybe_integer("RingTime") or 0
    ),
    "AgentDump": lambda h: AgentDump(**_channel(h), **_agent(h)),
    "QueueMemberAdded": lambda h: QueueMemberAdded(**_member(h)),
    "QueueMemberStatus": lambda h: QueueMemberStatus(**_member(h)),
    "QueueMemberPause": lambda h: QueueMemberPause(**_member(h)),
    "QueueMember": lambda h: QueueMember(**_member(h)),
    "QueueMemberRemoved": lambda h: QueueMemberRemoved(
        queue=h.text("Queue"),
        interface=h.text("Interface", "Location"),
        member_name=h.get("MemberName"),
    ),
    "QueueParams": lambda h: QueueParams(queue=h.text("Queue"), strategy=h.get("Strategy")),
    "QueueEntry": lambda h: QueueEntry(
        queue=h.text("Queue"),
        uniqueid=h.text("Uniqueid"),
        channel=h.get("Channel"),
        position=h.maybe_integer("Position"),
        caller_num=h.get("CallerIDNum"),
        wait_s=h.maybe_integer("Wait") or 0,
    ),
    "OriginateResponse": lambda h: OriginateResponse(
        action_id=h.get("ActionID"),
        response=h.text("Response"),
        reason=h.maybe_integer("Reason"),
        channel=h.get("Channel"),
        uniqueid=h.get("Uniqueid"),
    ),
    "ChanSpyStart": lambda h: ChanSpyStart(
        spyer_channel=h.text("SpyerChannel"), spyee_uniqueid=h.text("SpyeeUniqueid")
    ),
    "DBGetResponse": lambda h: DBGetResponse(
        family=h.text("Family"), key=h.text("Key"), value=h.get("Val")
    ),
}


def parse_ami(raw: Mapping[str, Any]) -> AmiEvent:
    """One AMI event message as its type; raises ``RejectedEvent`` when it is malformed."""
    name = raw.get("Event")
    if not isinstance(name, str) or not name:
        raise RejectedEvent("ami", "", "not_an_event", "no Event header")
    parser = _AMI_PARSERS.get(name)
    if parser is None:
        return UnhandledAmi(ami_name=name)
    return parser(_Headers(raw, name))


# -- ARI ---------------------------------------------------------------------------------------

# Every event type of ARI's schema (rest-api/events.json of Asterisk 22, "Message" subtypes).
ARI_EVENT_TYPES = frozenset({
    "MissingParams", "DeviceStateChanged", "PlaybackStarted", "PlaybackContinuing",
    "PlaybackFinished", "RecordingStarted", "RecordingFinished", "RecordingFailed",
    "ApplicationMoveFailed", "ApplicationRegistered", "ApplicationUnregistered",
    "ApplicationReplaced", "BridgeCreated", "BridgeDestroyed", "BridgeMerged",
    "BridgeBlindTransfer", "BridgeAttendedTransfer", "BridgeVideoSourceChanged",
    "ChannelCreated", "ChannelDestroyed", "ChannelEnteredBridge", "ChannelLeftBridge",
    "ChannelStateChange", "ChannelDtmfReceived", "ChannelDialplan", "ChannelCallerId",
    "ChannelUserevent", "ChannelHangupRequest", "ChannelVarset", "ChannelToneDetected",
    "ChannelTalkingStarted", "ChannelTalkingFinished", "ChannelHold", "ChannelUnhold",
    "ContactStatusChange", "EndpointStateChange", "Dial", "StasisEnd", "StasisStart",
    "TextMessageReceived", "ChannelConnectedLine", "PeerStatusChange", "ChannelTransfer",
    "RESTResponse", "CallBroadcast", "CallClaimed",
})


@dataclass(frozen=True, slots=True, kw_only=True)
class AriChannel:
    """The parts of ARI's ``Channel`` model the services read."""

    id: str
    name: str = ""
    state: str = ""
    caller_number: str = ""
    dialplan_exten: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StasisStart:
    """A channel entered our Stasis app; ``args`` are the dialplan's ``Stasis(app,args...)``."""

    channel: AriChannel
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StasisEnd:
    channel: AriChannel


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelDestroyed:
    channel: AriChannel
    cause: int
    cause_txt: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackFinished:
    """A playback ended: ``state`` "done" (played to its end), "failed" (no such sound, or the
    channel went away) or "stopped"."""

    playback_id: str
    state: str
    target_uri: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnhandledAri:
    """An ARI event of the schema that no service reads."""

    ari_type: str


AriEvent = StasisStart | StasisEnd | ChannelDestroyed | PlaybackFinished | UnhandledAri


def _object(value: object, name: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RejectedEvent("ari", name, "missing_field", f"no {what} object")
    return value


def _ari_channel(event: Mapping[str, Any], name: str) -> AriChannel:
    channel = _object(event.get("channel"), name, "channel")
    channel_id = channel.get("id")
    if not isinstance(channel_id, str) or not channel_id:
        raise RejectedEvent("ari", name, "missing_field", "no channel.id")
    caller = channel.get("caller")
    dialplan = channel.get("dialplan")
    return AriChannel(
        id=channel_id,
        name=str(channel.get("name", "")),
        state=str(channel.get("state", "")),
        caller_number=str(caller.get("number", "")) if isinstance(caller, Mapping) else "",
        dialplan_exten=str(dialplan.get("exten", "")) if isinstance(dialplan, Mapping) else "",
    )


def _stasis_start(event: Mapping[str, Any], name: str) -> StasisStart:
    args = event.get("args", [])
    if not isinstance(args, list):
        raise RejectedEvent("ari", name, "bad_value", "args is not a list")
    return StasisStart(channel=_ari_channel(event, name), args=tuple(str(a) for a in args))


def _channel_destroyed(event: Mapping[str, Any], name: str) -> ChannelDestroyed:
    cause = event.get("cause")
    if not isinstance(cause, int):
        raise RejectedEvent("ari", name, "bad_value", f"cause: not an integer: {cause!r}")
    return ChannelDestroyed(
        channel=_ari_channel(event, name), cause=cause, cause_txt=str(event.get("cause_txt", ""))
    )


def _playback_finished(event: Mapping[str, Any], name: str) -> PlaybackFinished:
    playback = _object(event.get("playback"), name, "playback")
    playback_id, state = playback.get("id"), playback.get("state")
    if not isinstance(playback_id, str) or not playback_id or not isinstance(state, str):
        raise RejectedEvent("ari", name, "missing_field", "no playback.id or playback.state")
    return PlaybackFinished(playback_id=playback_id, state=state,
                            target_uri=str(playback.get("target_uri", "")))


_ARI_PARSERS: dict[str, Callable[[Mapping[str, Any], str], AriEvent]] = {
    "StasisStart": _stasis_start,
    "StasisEnd": lambda e, n: StasisEnd(channel=_ari_channel(e, n)),
    "ChannelDestroyed": _channel_destroyed,
    "PlaybackFinished": _playback_finished,
}


def parse_ari(raw: object) -> AriEvent:
    """One ARI WebSocket message (decoded JSON) as its type; raises ``RejectedEvent``."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        raise RejectedEvent("ari", "", "not_an_event", "not a JSON object with a type")
    name: str = raw["type"]
    if name not in ARI_EVENT_TYPES:
        raise RejectedEvent("ari", name, "unknown_type", "not an event type of ARI's schema")
    parser = _ARI_PARSERS.get(name)
    return UnhandledAri(ari_type=name) if parser is None else parser(raw, name)
