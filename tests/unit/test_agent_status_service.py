"""The agent status service with recording fakes for Asterisk: feature codes from the phone,
the BLF device states after each change, refusals, and the auto-pause from queue events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from controller.agents.config import AgentsConfig
from controller.agents.dialplan import SOUND_VARIABLE, login_device, paused_device
from controller.agents.dispositions import DispositionService, KeyedDisposition
from controller.agents.machine import AgentStatus, LogIn, Refusal, Unpause
from controller.agents.repository import StatusLogRepository
from controller.agents.service import (
    SOUND_DISPOSED,
    SOUND_LOGGED_IN,
    SOUND_LOGGED_OUT,
    SOUND_PAUSED,
    SOUND_REFUSED,
    SOUND_UNPAUSED,
    SOUND_WRAPUP_ENDED,
    AgentStatusService,
)
from controller.asterisk.events import (
    AgentConnect,
    AgentRingNoAnswer,
    AriChannel,
    HangupRequest,
    StasisStart,
)
from controller.dialer.repository import GLOBAL_DNC, DialerRepository
from controller.inbound.config import InboundConfig
from controller.inbound.repository import (
    AgentRepository,
    InboundCallRecord,
    InboundCallRepository,
    QueueMembership,
)
from controller.metrics.registry import Metrics, SnapshotProviders
from controller.metrics.snapshot import ComponentUp
from controller.store.base import Database, StoreError, to_iso

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


class FakeMemberships:
    """Keeps the store as AgentService does; records the Asterisk side it would touch."""

    def __init__(self, store: Database) -> None:
        self.repository = AgentRepository(store)
        self.calls: list[tuple[str, ...]] = []

    async def login(
        self, agent_id: str, queues: Sequence[QueueMembership] | None = None
    ) -> list[str]:
        memberships = list(queues or [QueueMembership("support")])
        await self.repository.log_in(agent_id, memberships, NOW)
        self.calls.append(("login", agent_id, *(m.queue for m in memberships)))
        return [m.queue for m in memberships]

    async def logout(self, agent_id: str) -> None:
        await self.repository.log_out(agent_id, NOW)
        self.calls.append(("logout", agent_id))

    async def rejoin(self, agent_id: str) -> None:
        self.calls.append(("rejoin", agent_id))

    async def pause(self, agent_id: str, paused: bool, reason: str = "") -> None:
        await self.repository.set_paused(agent_id, paused, reason, NOW)
        self.calls.append(("pause" if paused else "unpause", agent_id, reason))


class FakeDevices:
    def __init__(self) -> None:
        self.states: dict[str, bool] = {}

    async def set_device_state(self, device: str, in_use: bool) -> None:
        self.states[device] = in_use


class FakeChannels:
    def __init__(self) -> None:
        self.sounds: dict[str, str] = {}

    async def continue_with(self, channel_id: str, variables: dict[str, str]) -> None:
        self.sounds[channel_id] = variables[SOUND_VARIABLE]


@pytest.fixture
def parts(store: Database) -> tuple[AgentStatusService, FakeMemberships, FakeDevices,
                                    FakeChannels]:
    config = AgentsConfig.model_validate(
        {"1001": {}, "1002": {}, "auto_pause": {"support": 2}})
    memberships, devices, channels = FakeMemberships(store), FakeDevices(), FakeChannels()
    inbound = InboundConfig.model_validate({"default_region": "CH", "queues": {"support": {
        "wrapup": 30, "dispositions": {"1": "resolved", "9": {"name": "do-not-call",
                                                              "dnc": True}}}}})
    dispositions = DispositionService(
        store, inbound, timedelta(minutes=10),
        Metrics(SnapshotProviders(components=lambda: ComponentUp(True, True, True))), lambda: NOW)
    service = AgentStatusService(config, memberships, store, devices, channels, dispositions,
                                 agent_ids=("1001", "1002"), clock=lambda: NOW)
    return service, memberships, devices, channels


async def until(check: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Poll ``check`` (what the service's spawned task must have done) for up to 5 s."""
    for _ in range(500):
        value = check()
        if value if isinstance(value, bool) else await value:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def feature(
    service: AgentStatusService, channels: FakeChannels, channel: str, *args: str
) -> None:
    service.on_feature(StasisStart(channel=AriChannel(id=channel),
                                   args=("agent-feature", *args)))
    await until(lambda: channel in channels.sounds, f"the sound of {channel}")


async def test_phone_codes_change_the_status_and_confirm_with_a_sound(
    parts: tuple[AgentStatusService, FakeMemberships, FakeDevices, FakeChannels],
    store: Database,
) -> None:
    service, memberships, devices, channels = parts
    await feature(service, channels, "c1", "login_toggle", "", "1001")
    await feature(service, channels, "c2", "pause", "2", "1001")
    await feature(service, channels, "c3", "pause_toggle", "", "1001")
    await feature(service, channels, "c4", "pause", "7", "1001")  # no reason 7 configured
    await feature(service, channels, "c4b", "end_wrapup", "", "1001")
    await feature(service, channels, "c5", "login_toggle", "", "1001")
    await feature(service, channels, "c6", "login_toggle", "", "4444")  # not an agent's endpoint
    assert channels.sounds == {"c1": SOUND_LOGGED_IN, "c2": SOUND_PAUSED, "c3": SOUND_UNPAUSED,
                               "c4": SOUND_REFUSED, "c4b": SOUND_WRAPUP_ENDED,
                               "c5": SOUND_LOGGED_OUT, "c6": SOUND_REFUSED}
    assert memberships.calls == [("login", "1001", "support"), ("pause", "1001", "break"),
                                 ("unpause", "1001", ""), ("rejoin", "1001"),
                                 ("logout", "1001")]
    assert devices.states == {login_device("1001"): False, paused_device("1001"): False}
    # *47 is kept: the stats end that wrap-up there
    assert await StatusLogRepository(store).wrapup_ends(NOW) == [("1001", NOW)]


async def answered_call(
    store: Database, call_id: str, caller: str, agent_id: str, ended_ago: float
) -> None:
    """A support call ``agent_id`` answered and that ended ``ended_ago`` seconds before NOW."""
    await InboundCallRepository(store).save_ended(InboundCallRecord(
        call_id, f"PJSIP/trunk-{call_id}", "5000", caller, NOW - timedelta(seconds=900),
        queue="support", answered_at=NOW - timedelta(seconds=600),
        ended_at=NOW - timedelta(seconds=ended_ago), outcome="answered", agent_id=agent_id))


async def test_a_disposition_keyed_in_wrapup_is_stored_once_and_ends_the_wrapup(
    parts: tuple[AgentStatusService, FakeMemberships, FakeDevices, FakeChannels],
    store: Database,
) -> None:
    service, memberships, _, channels = parts
    await answered_call(store, "c1", "+15550199", "1001", ended_ago=10)
    await service.apply("1001", LogIn())
    await feature(service, channels, "d1", "disposition", "7", "1001")  # no such key
    await feature(service, channels, "d2", "disposition", "1", "1002")  # answered no call
    assert memberships.calls == [("login", "1001", "support")]
    await feature(service, channels, "d3", "disposition", "1", "1001")
    await feature(service, channels, "d4", "disposition", "1", "1001")  # one per call
    assert [channels.sounds[c] for c in ("d1", "d2", "d3", "d4")] == [
        SOUND_REFUSED, SOUND_REFUSED, SOUND_DISPOSED, SOUND_REFUSED]
    row = await store.fetchone("SELECT disposition, disposed_by, disposed_at FROM inbound_calls")
    assert row is not None
    assert (row["disposition"], row["disposed_by"], row["disposed_at"]) == (
        "resolved", "1001", to_iso(NOW))
    # within the queue's 30 s wrap-up: ended there as *47 ends it, once
    assert memberships.calls == [("login", "1001", "support"), ("rejoin", "1001")]
    assert await StatusLogRepository(store).wrapup_ends(NOW) == [("1001", NOW)]


async def test_a_do_not_call_disposition_puts_the_caller_on_the_global_list(
    parts: tuple[AgentStatusService, FakeMemberships, FakeDevices, FakeChannels],
    store: Database,
) -> None:
    service, _, _, channels = parts
    await answered_call(store, "c1", "044 123 45 67", "1001", ended_ago=300)
    await answered_call(store, "c2", "anonymous", "1002", ended_ago=300)
    with capture_logs() as logs:
        await feature(service, channels, "d1", "disposition", "9", "1001")
        await feature(service, channels, "d2", "disposition", "9", "1002")
    # read in the inbound default region (CH), as E.164, with who said it
    assert [(row["phone"], row["source"]) for row in await DialerRepository(store).list_dnc(
        GLOBAL_DNC)] == [("+41441234567", "disposition do-not-call by agent 1001")]
    # a withheld number is no number: the disposition stands, the list cannot take it
    assert channels.sounds == {"d1": SOUND_DISPOSED, "d2": SOUND_DISPOSED}
    assert [(e["event"], e["caller"]) for e in logs if e["log_level"] == "warning"] == [
        ("agent.dnc_number_unreadable", "anonymous")]
    rows = await store.fetchall("SELECT call_id, disposition FROM inbound_calls ORDER BY call_id")
    assert [tuple(row.values()) for row in rows] == [("c1", "do-not-call"), ("c2", "do-not-call")]


class UnreachableDispositions:
    async def key(self, agent_id: str, key: str) -> KeyedDisposition | Refusal:
        raise StoreError("connection refused")


async def test_a_store_out_of_reach_is_an_error_tone_and_a_warning(store: Database) -> None:
    channels = FakeChannels()
    service = AgentStatusService(
        AgentsConfig.model_validate({"1001": {}}), FakeMemberships(store), store,
        FakeDevices(), channels, UnreachableDispositions(), agent_ids=("1001",),
        clock=lambda: NOW)
    with capture_logs() as logs:
        await feature(service, channels, "d1", "disposition", "1", "1001")
        await asyncio.sleep(0.05)  # the feature's task ends after the channel is sent back
    assert channels.sounds == {"d1": SOUND_REFUSED}
    assert [(e["event"], e["error"]) for e in logs if e["log_level"] != "info"] == [
        ("agent.feature_failed", "connection refused")]


async def test_the_keys_follow_and_a_refusal_changes_nothing(
    parts: tuple[AgentStatusService, FakeMemberships, FakeDevices, FakeChannels],
) -> None:
    service, memberships, devices, _ = parts
    assert await service.apply("1002", Unpause()) == Refusal("not paused")
    assert memberships.calls == [] and devices.states == {}
    await service.apply("1002", LogIn())
    assert devices.states == {login_device("1002"): True, paused_device("1002"): False}
    await service.show_all()
    assert devices.states[login_device("1001")] is False
    assert (await service.position("1002")).status is AgentStatus.AVAILABLE


async def test_queue_events_count_unanswered_rings_and_pause_with_missed(
    parts: tuple[AgentStatusService, FakeMemberships, FakeDevices, FakeChannels],
) -> None:
    service, memberships, _, _ = parts
    await service.apply("1001", LogIn())

    def event(kind: type[AgentRingNoAnswer | AgentConnect], offer: str = "1.2"
              ) -> AgentRingNoAnswer | AgentConnect:
        return kind(channel="PJSIP/trunk-1", uniqueid="1.1", linkedid="1.1", state_desc="Up",
                    queue="support", interface="PJSIP/1001", dest_uniqueid=offer)

    async def counted(rings: int) -> bool:
        return sum((await service.position("1001")).missed.values()) == rings

    # a ring, an answer (the count starts again), a ring: still available
    service.on_ami_event(event(AgentRingNoAnswer))
    await until(lambda: counted(1), "one ring counted")
    service.on_ami_event(event(AgentConnect))
    await until(lambda: counted(0), "the answer to reset the count")
    service.on_ami_event(event(AgentRingNoAnswer))
    await until(lambda: counted(1), "one ring counted again")
    assert (await service.position("1001")).status is AgentStatus.AVAILABLE
    # offers answered busy (behind the proxy: a call on another node) are not missed rings:
    # counted, the first would pause 1001 here (two in a row); the answer after them resets
    # the count, and 1001 is still available (tasks run in turn on the agent's lock)
    for offer in ("1.3", "1.4"):
        service.on_ami_event(HangupRequest(uniqueid=offer, channel="PJSIP/1001-3", linkedid="1.1",
                                           state_desc="Down", cause=17))
        service.on_ami_event(event(AgentRingNoAnswer, offer))
    service.on_ami_event(event(AgentConnect, "1.5"))
    await until(lambda: counted(0), "the answer after the busy offers")
    assert (await service.position("1001")).status is AgentStatus.AVAILABLE
    service.on_ami_event(HangupRequest(uniqueid="1.6", channel="PJSIP/1001-6", linkedid="1.1",
                                       state_desc="Down", cause=16))  # declined: a miss
    service.on_ami_event(event(AgentRingNoAnswer, "1.6"))
    await until(lambda: counted(1), "an unanswered ring counted")
    service.on_ami_event(event(AgentRingNoAnswer))
    await until(lambda: memberships.calls[-1][0] == "pause", "the auto-pause")
    position = await service.position("1001")
    assert (position.status, position.reason) == (AgentStatus.PAUSED, "missed")
    assert memberships.calls[-1] == ("pause", "1001", "missed")
