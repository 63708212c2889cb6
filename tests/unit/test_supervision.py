"""Supervision: who may supervise whom, the exact channel ChanSpy joins, each mode's options,
and the audit rows (on each store backend)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from controller.agents.config import AgentsConfig
from controller.agents.supervision import (
    SupervisionMode,
    SupervisionRepository,
    SupervisionService,
    SupervisionSession,
    agent_call_channel,
    refusal,
)
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
