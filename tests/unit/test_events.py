"""Asterisk events are parsed once into types; malformed or unknown ones are counted, not passed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller.asterisk.events import (
    ARI_EVENT_TYPES,
    AgentComplete,
    AgentConnect,
    AgentRingNoAnswer,
    AmiEvent,
    CallctlAmd,
    CallctlPickedUp,
    ChannelDestroyed,
    CoreShowChannel,
    DBGetResponse,
    DtmfEnd,
    Hangup,
    HangupRequest,
    OriginateResponse,
    PlaybackFinished,
    QueueEntry,
    QueueMember,
    QueueMemberPause,
    QueueMemberStatus,
    RejectedEvent,
    StasisStart,
    UnhandledAmi,
    UnhandledAri,
    parse_ami,
    parse_ari,
)
from controller.config import parse_config
from controller.features.core import Core
from controller.store import open_store
from testbed.asterisk import root_dir

# a channel snapshot as Asterisk 22 sends it in every channel event
CHANNEL = {
    "Channel": "PJSIP/trunk-00000001", "ChannelState": "6", "ChannelStateDesc": "Up",
    "CallerIDNum": "+12125550100", "CallerIDName": "<unknown>", "Context": "callctl-queue",
    "Exten": "support", "Priority": "2", "Uniqueid": "1733000000.1", "Linkedid": "1733000000.1",
}
MEMBER = {
    "Queue": "support", "MemberName": "1001", "Interface": "PJSIP/1001",
    "StateInterface": "PJSIP/1001", "Membership": "dynamic", "Penalty": "2", "CallsTaken": "0",
    "InCall": "0", "Status": "1", "Paused": "1", "PausedReason": "lunch", "Wrapuptime": "5",
}


def test_channel_events_carry_the_snapshot_and_their_own_fields() -> None:
    hangup = parse_ami({"Event": "Hangup", **CHANNEL, "Cause": "17", "Cause-txt": "User busy"})
    assert hangup == Hangup(
        uniqueid="1733000000.1", channel="PJSIP/trunk-00000001", linkedid="1733000000.1",
        state_desc="Up", caller_num="+12125550100", context="callctl-queue", exten="support",
        priority=2,
        cause=17, cause_txt="User busy",
    )
    picked_up = parse_ami({"Event": "UserEvent", **CHANNEL, "UserEvent": "CallctlPickedUp",
                           "Attempt": "att-1"})
    assert isinstance(picked_up, CallctlPickedUp) and picked_up.attempt == "att-1"
    amd = parse_ami({"Event": "UserEvent", **CHANNEL, "UserEvent": "CallctlAmd",
                     "Attempt": "att-1", "Cause": "TOOLONG-5000"})
    assert isinstance(amd, CallctlAmd)
    assert (amd.attempt, amd.amd_cause) == ("att-1", "TOOLONG-5000")
    key = parse_ami({"Event": "DTMFEnd", **CHANNEL, "Digit": "9", "DurationMs": "120",
                     "Direction": "Received"})
    assert isinstance(key, DtmfEnd) and (key.digit, key.received) == ("9", True)
    sent = parse_ami({"Event": "DTMFEnd", **CHANNEL, "Digit": "1", "Direction": "Sent"})
    assert isinstance(sent, DtmfEnd) and not sent.received
    listed = parse_ami({"Event": "CoreShowChannel", **CHANNEL, "Duration": "01:02:03"})
    assert isinstance(listed, CoreShowChannel) and listed.duration_s == 3723


def test_agent_events_keep_their_units_apart() -> None:
    agent = {**CHANNEL, "Queue": "support", "MemberName": "1001", "Interface": "PJSIP/1001",
             "DestUniqueid": "1733000000.2"}
    connect = parse_ami({"Event": "AgentConnect", **agent, "RingTime": "3", "HoldTime": "7"})
    assert isinstance(connect, AgentConnect)
    assert (connect.ring_time_s, connect.dest_uniqueid) == (3, "1733000000.2")
    no_answer = parse_ami({"Event": "AgentRingNoAnswer", **agent, "RingTime": "15000"})
    assert isinstance(no_answer, AgentRingNoAnswer) and no_answer.ring_time_ms == 15000
    complete = parse_ami({"Event": "AgentComplete", **agent, "TalkTime": "42",
                          "Reason": "caller"})
    assert isinstance(complete, AgentComplete)
    assert (complete.talk_time_s, complete.reason, complete.uniqueid) == (
        42, "caller", "1733000000.1"
    )


def test_a_hangup_request_keeps_its_cause() -> None:
    busy = parse_ami({"Event": "HangupRequest", **CHANNEL, "Cause": "17"})
    assert isinstance(busy, HangupRequest) and busy.cause == 17
    asked = parse_ami({"Event": "HangupRequest", **CHANNEL})  # an AMI Hangup action's: none
    assert isinstance(asked, HangupRequest) and asked.cause is None


def test_member_events_and_the_status_list_use_one_shape() -> None:
    event = parse_ami({"Event": "QueueMemberPause", **MEMBER})
    assert event == QueueMemberPause(
        queue="support", interface="PJSIP/1001", member_name="1001", status=1, paused=True,
        paused_reason="lunch", in_call=False, penalty=2, wrapup_s=5,
    )
    listed = parse_ami({"Event": "QueueMember", "Queue": "support", "Location": "PJSIP/1002",
                        "Name": "1002", "Status": "6", "Paused": "0"})
    assert isinstance(listed, QueueMember)
    assert (listed.interface, listed.member_name, listed.status) == ("PJSIP/1002", "1002", 6)
    # a header left out is None, so the model keeps what it knew
    partial = parse_ami({"Event": "QueueMemberStatus", "Queue": "q", "Interface": "PJSIP/1"})
    assert partial == QueueMemberStatus(queue="q", interface="PJSIP/1")
    entry = parse_ami({"Event": "QueueEntry", "Queue": "support", "Uniqueid": "c1", "Wait": "9"})
    assert entry == QueueEntry(queue="support", uniqueid="c1", wait_s=9)


def test_originate_response_and_dbget() -> None:
    failed = parse_ami({"Event": "OriginateResponse", "ActionID": "att-1", "Response": "Failure",
                        "Channel": "PJSIP/+1212@trunk", "Reason": "0", "Uniqueid": "<null>"})
    assert isinstance(failed, OriginateResponse)
    assert (failed.action_id, failed.reason, failed.failed) == ("att-1", 0, True)
    value = parse_ami({"Event": "DBGetResponse", "Family": "callctl", "Key": "att-1",
                       "Val": "16,1,human"})
    assert value == DBGetResponse(family="callctl", key="att-1", value="16,1,human")


@pytest.mark.parametrize(
    ("message", "name"),
    [
        ({"Event": "VarSet", "Variable": "X"}, "VarSet"),  # a real event nobody reads
        ({"Event": "UserEvent", **CHANNEL, "UserEvent": "SomeoneElses"}, "UserEvent"),
        ({"Event": "FancyModuleEvent"}, "FancyModuleEvent"),  # AMI grows with its modules
    ],
)
def test_events_no_service_reads_pass_as_unhandled(message: dict[str, str], name: str) -> None:
    assert parse_ami(message) == UnhandledAmi(ami_name=name)


@pytest.mark.parametrize(
    ("message", "reason", "detail"),
    [
        ({"Response": "Success"}, "not_an_event", "no Event header"),
        ({"Event": "Hangup", "Channel": "PJSIP/x", "Cause": "16"}, "missing_field",
         "no Uniqueid header"),
        ({"Event": "Hangup", **CHANNEL, "Cause": "busy"}, "bad_value",
         "Cause: not an integer: 'busy'"),
        ({"Event": "QueueCallerJoin", **CHANNEL}, "missing_field", "no Queue header"),
        ({"Event": "QueueMemberAdded", "Queue": "q"}, "missing_field",
         "no Interface or Location or StateInterface header"),
        ({"Event": "QueueMemberStatus", **MEMBER, "Paused": "maybe"}, "bad_value",
         "Paused: not a flag: 'maybe'"),
        ({"Event": "UserEvent", **CHANNEL, "UserEvent": "CallctlAmd"}, "missing_field",
         "no Attempt header"),
        ({"Event": "DTMFEnd", **CHANNEL, "Direction": "Received"}, "missing_field",
         "no Digit header"),
        ({"Event": "CoreShowChannel", **CHANNEL, "Duration": "5s"}, "bad_value",
         "Duration: not HH:MM:SS: '5s'"),
    ],
)
def test_malformed_ami_events_are_rejected_naming_what(
    message: dict[str, str], reason: str, detail: str
) -> None:
    with pytest.raises(RejectedEvent) as raised:
        parse_ami(message)
    assert (raised.value.source, raised.value.reason, raised.value.detail) == (
        "ami", reason, detail
    )


ARI_CHANNEL = {
    "id": "1733000000.5", "name": "PJSIP/trunk-00000005", "state": "Ring",
    "protocol_id": "", "caller": {"name": "", "number": "+12125550100"},
    "connected": {"name": "", "number": ""}, "accountcode": "",
    "dialplan": {"context": "callctl-inbound", "exten": "5000", "priority": 3,
                 "app_name": "Stasis", "app_data": "callctl,inbound,5000"},
    "creationtime": "2026-12-01T22:00:00.000+0000", "language": "en",
}


def test_ari_events() -> None:
    start = parse_ari({"type": "StasisStart", "application": "callctl",
                       "args": ["inbound", "5000"], "channel": ARI_CHANNEL})
    assert isinstance(start, StasisStart)
    assert start.args == ("inbound", "5000")
    assert (start.channel.id, start.channel.name, start.channel.state) == (
        "1733000000.5", "PJSIP/trunk-00000005", "Ring"
    )
    assert (start.channel.caller_number, start.channel.dialplan_exten) == ("+12125550100", "5000")
    destroyed = parse_ari({"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal",
                           "channel": ARI_CHANNEL})
    assert isinstance(destroyed, ChannelDestroyed) and destroyed.cause == 16
    assert parse_ari({"type": "ChannelVarset", "variable": "X"}) == UnhandledAri(
        ari_type="ChannelVarset"
    )
    finished = parse_ari({"type": "PlaybackFinished", "playback": {
        "id": "callctl-key-tone-1", "media_uri": "sound:beep", "state": "done",
        "target_uri": "channel:leg-1"}})
    assert finished == PlaybackFinished(playback_id="callctl-key-tone-1", state="done",
                                        target_uri="channel:leg-1")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (["not", "an", "object"], "not_an_event"),
        ({"no": "type"}, "not_an_event"),
        ({"type": "ChannelExploded"}, "unknown_type"),
        ({"type": "StasisStart", "args": []}, "missing_field"),
        ({"type": "StasisStart", "args": "inbound", "channel": ARI_CHANNEL}, "bad_value"),
        ({"type": "ChannelDestroyed", "cause": "16", "channel": ARI_CHANNEL}, "bad_value"),
        ({"type": "PlaybackFinished"}, "missing_field"),
        ({"type": "PlaybackFinished", "playback": {"id": "p1"}}, "missing_field"),
    ],
)
def test_malformed_or_unknown_ari_events_are_rejected(message: Any, reason: str) -> None:
    with pytest.raises(RejectedEvent) as raised:
        parse_ari(message)
    assert (raised.value.source, raised.value.reason) == ("ari", reason)


def test_the_ari_event_types_are_those_of_the_installed_asterisk() -> None:
    schema = root_dir() / "usr/share/asterisk/rest-api/events.json"
    if not schema.exists():
        pytest.skip("no Asterisk root built here (make setup)")
    models = json.loads(schema.read_text())["models"]
    assert frozenset(models["Message"]["subTypes"]) - {"Event"} | set(
        models["Event"]["subTypes"]
    ) == ARI_EVENT_TYPES


async def test_the_core_counts_rejected_events_and_never_passes_them_on(tmp_path: Path) -> None:
    config = parse_config({
        "http": {"api_token": "t0ken"},
        "ami": {"username": "u", "secret": "s"},
        "ari": {"username": "u", "password": "p"},
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
    })
    store = await open_store(config.store.url)
    try:
        core = Core(config, store)
        seen: list[AmiEvent] = []
        core.sync.add_listener(seen.append)
        started: list[StasisStart] = []
        core.on_stasis("inbound", started.append)
        core.on_ami_message({"Event": "Hangup", "Channel": "PJSIP/x", "Cause": "16"})
        core.on_ami_message({"Event": "Newchannel", **CHANNEL})
        core.on_ari_message({"type": "ChannelExploded"})
        core.on_ari_message("{not json")  # what the ARI client hands on when JSON fails
        core.on_ari_message({"type": "StasisStart", "args": ["inbound", "5000"],
                             "channel": ARI_CHANNEL})
        scrape = (await core.metrics.render()).decode()
    finally:
        await store.close()
    assert [type(e).__name__ for e in seen] == ["Newchannel"]
    assert "1733000000.1" in core.model.channels
    assert [e.channel.id for e in started] == ["1733000000.5"]
    rejected = 'callctl_events_rejected_total{reason="%s",source="%s"} 1.0'
    assert rejected % ("missing_field", "ami") in scrape
    assert rejected % ("unknown_type", "ari") in scrape
    assert rejected % ("not_an_event", "ari") in scrape
    assert 'callctl_events_rejected_total{reason="bad_value",source="ami"} 0.0' in scrape
    for task in ("ami", "ari"):
        assert f'callctl_task_failures_total{{task="{task}"}} 0.0' in scrape
