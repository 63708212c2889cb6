"""Supervision: who may supervise whom, the exact channel ChanSpy joins, each mode's options,
and the audit rows (on each store backend)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.agents.config import AgentsConfig
from controller.agents.dialplan import ELSEWHERE_VARIABLE, SOUND_VARIABLE, SPY_CHANNEL_VARIABLE
from controller.agents.supervision import (
    CallElsewhere,
    SupervisionMode,
    SupervisionRepository,
    SupervisionService,
    SupervisionSession,
    agent_call_channel,
    refusal,
)
from controller.asterisk.events import AriChannel, StasisStart
from controller.store.base import Database

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
CONFIG = AgentsConfig.model_validate({
    "1001": {"team": "support"}, "1003": {"team": "support", "supervisor": True},
    "1005": {"team": "sales", "supervisor": True}, "1010": {}})


def test_only_a_supervisor_of_the_agents_team_may() -> None:
    assert refusal(CONFIG, "1003", "1001") is None
    assert refusal(CONFIG, "1005", "1001") == "1005 is not a supervisor of agent 1001's team"
    assert refusal(CONFIG, "1001", "1003") is not None  # an agent of the team, no supervisor
    assert refusal(CONFIG, "1003", "1003") is not None  # not oneself
    assert refusal(CONFIG, "1003", "1010") is not None  # no team, no supervisor
    assert refusal(CONFIG, "1003", "4444") == "4444 is not a configured agent"


def test_the_agents_channel_is_matched_exactly() -> None:
    live = ["PJSIP/10010-00000001", "PJSIP/trunk-00000002", "PJSIP/1001-00000003"]
    assert agent_call_channel("1001", live) == "PJSIP/1001-00000003"
    assert agent_call_channel("1002", live) is None
    assert [m.chanspy_options for m in SupervisionMode] == ["qE", "qEw", "qEB"]


async def test_sessions_and_refusals_are_audited_with_start_and_end(store: Database) -> None:
    sessions = SupervisionRepository(store)
    await sessions.record(SupervisionSession("c1", "1003", "1001", SupervisionMode.BARGE,
                                             "PJSIP/1001-00000003", None, T0, None))
    await sessions.record(SupervisionSession("c2", "1005", "1001", SupervisionMode.LISTEN, "",
                                             "not a supervisor", T0, T0))
    assert await sessions.end("c1", T0 + timedelta(seconds=42))
    assert not await sessions.end("c1", T0 + timedelta(seconds=50))  # ended once
    found = await sessions.sessions(T0 - timedelta(hours=1))
    assert [(s.session_id, s.mode, s.refused, s.ended_at) for s in found] == [
        ("c1", SupervisionMode.BARGE, None, T0 + timedelta(seconds=42)),
        ("c2", SupervisionMode.LISTEN, "not a supervisor", T0)]
    assert await sessions.sessions(T0 + timedelta(seconds=1)) == []


class FakeOriginator:
    def __init__(self) -> None:
        self.rung: list[tuple[str, str, str | None]] = []

    async def originate(self, channel: str, channel_id: str, **where: Any) -> None:
        self.rung.append((channel, channel_id, where.get("exten")))


class NoChannels:
    async def continue_with(self, channel_id: str, variables: dict[str, str]) -> None:
        raise AssertionError("no feature channel in these tests")


async def test_a_refusal_from_the_cli_or_api_is_audited_and_rings_no_one(
    store: Database,
) -> None:
    originator = FakeOriginator()
    service = SupervisionService(CONFIG, store, NoChannels(), originator, lambda: (),
                                 clock=lambda: T0)
    why = await service.ring_supervisor("1005", "1001", SupervisionMode.WHISPER)
    assert why == "1005 is not a supervisor of agent 1001's team" and originator.rung == []
    assert await service.ring_supervisor("1003", "1001", SupervisionMode.BARGE) is None
    [(channel, session_id, exten)] = originator.rung
    assert (channel, exten) == ("PJSIP/1003", "*531001")
    [refused] = await service.sessions(T0)
    assert (refused.supervisor, refused.mode, refused.refused, refused.ended_at) == (
        "1005", SupervisionMode.WHISPER, why, T0)
    assert refused.session_id.startswith("supervise-") and refused.session_id != session_id


class FeatureChannels:
    def __init__(self) -> None:
        self.continued: dict[str, dict[str, str]] = {}

    async def continue_with(self, channel_id: str, variables: dict[str, str]) -> None:
        self.continued[channel_id] = variables


def on_a_site(store: Database, live: list[str], busy_on: list[str]) -> tuple[
        SupervisionService, FeatureChannels, FakeOriginator]:
    """This node's service, its own live channels ``live``; the other nodes that show 1001 on
    a call ``busy_on``."""
    async def nodes_with_call(agent_id: str) -> list[str]:
        return busy_on if agent_id == "1001" else []

    channels, originator = FeatureChannels(), FakeOriginator()
    service = SupervisionService(CONFIG, store, channels, originator, lambda: live,
                                 clock=lambda: T0, nodes_with_call=nodes_with_call)
    return service, channels, originator


async def supervise_from_the_phone(service: SupervisionService, channels: FeatureChannels,
                                   channel: str, supervisor: str = "1003") -> dict[str, str]:
    """The supervisor's ``*51 1001`` on ``channel``: the variables it goes on with."""
    service.on_stasis(StasisStart(channel=AriChannel(id=channel),
                                  args=("supervise", "listen", "1001", supervisor)))
    for _ in range(500):
        if channel in channels.continued:
            return channels.continued[channel]
        await asyncio.sleep(0.01)
    raise AssertionError(f"{channel} never went on")


async def test_the_phones_invite_goes_on_to_the_node_that_has_the_agents_call(
    store: Database,
) -> None:
    service, channels, _ = on_a_site(store, live=[], busy_on=["node2"])
    # 503: the proxy's next node
    assert await supervise_from_the_phone(service, channels, "c1") == {ELSEWHERE_VARIABLE: "1"}
    assert await supervise_from_the_phone(service, channels, "c2", supervisor="1005") == {
        SOUND_VARIABLE: "beeperr"}  # not its team: refused here
    here, channels_here, _ = on_a_site(store, live=["PJSIP/1001-00000007"], busy_on=[])
    started = await supervise_from_the_phone(here, channels_here, "c3")
    assert started[SPY_CHANNEL_VARIABLE] == "PJSIP/1001-00000007"
    rows = {s.session_id: s.refused for s in await service.sessions(T0)}
    assert rows == {"c1": "agent 1001's call is on node2: passed to the next node",
                    "c2": "1005 is not a supervisor of agent 1001's team", "c3": None}


async def test_the_cli_or_api_is_told_which_node_has_the_agents_call(store: Database) -> None:
    service, channels, originator = on_a_site(store, live=[], busy_on=["node2"])
    with pytest.raises(CallElsewhere, match="agent 1001's call is on node2: ask its controller"):
        await service.ring_supervisor("1003", "1001", SupervisionMode.LISTEN)
    assert originator.rung == []
    # a phone rung from here before the call moved cannot be passed on: refused, with a sound
    assert await supervise_from_the_phone(service, channels, "supervise-0a1b2c") == {
        SOUND_VARIABLE: "beeperr"}
    [first, second] = await service.sessions(T0)
    assert first.refused == second.refused == "agent 1001's call is on node2: ask its controller"
