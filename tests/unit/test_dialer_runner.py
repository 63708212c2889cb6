"""The campaign runner on recording fakes of AMI and ARI and a real store (both backends).

What is checked here is the executor: that the machine's commands become the right AMI and ARI
requests and store writes, that what Asterisk answers goes back to the machine, and that a store
failure in the tick does not end the dialer. The calls themselves are tested on the real
Asterisk (tests/integration/test_dialer*.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from controller.asterisk.ami import AmiError
from controller.asterisk.events import (
    AriChannel,
    CallctlPickedUp,
    DtmfEnd,
    Hangup,
    Newchannel,
    PlaybackFinished,
    StasisStart,
)
from controller.dialer.leads import Lead
from controller.dialer.ledger import FAMILY
from controller.dialer.policy import Result, longest_call
from controller.dialer.repository import (
    GLOBAL_DNC,
    AttemptTiming,
    CampaignHead,
    ClaimedAttempt,
    DialerRepository,
    StoredSettingsInvalid,
)
from controller.dialer.runner import ANSWERS_READ_S, DialerService
from controller.dialer.settings import parse_campaign_settings
from controller.metrics.registry import Metrics, SnapshotProviders
from controller.metrics.snapshot import ComponentUp
from controller.state.model import LiveModel
from controller.store.backlog import WriteBacklog
from controller.store.base import Database, StoreError, from_iso

NOON_NY = datetime(2026, 6, 2, 16, 0, tzinfo=UTC).timestamp()  # 12:00 in New York


class FakeAmi:
    """Records originates and keeps AstDB in a dict, as Asterisk answers DBGet/DBPut/DBDel."""

    connected = True

    def __init__(self) -> None:
        self.originates: list[dict[str, Any]] = []
        self.astdb: dict[str, str] = {}

    async def action(self, name: str, as_list: bool | None = False, **params: Any) -> Any:
        key = f"{params.get('Family')}/{params.get('Key')}"
        if name == "DBPut":
            self.astdb[key] = params["Val"]
        elif name == "DBDel":
            self.astdb.pop(key, None)
        elif name == "DBGet":
            if key not in self.astdb:
                raise AmiError("DBGet: Database entry not found")
            return [{"Response": "Success"}, {"Event": "DBGetResponse", "Val": self.astdb[key]}]
        return {"Response": "Success"}

    async def originate(self, channel: str, channel_id: str, **fields: Any) -> None:
        self.originates.append({"channel": channel, "channel_id": channel_id, **fields})


class FakeAri:
    connected = True
    app = "callctl"

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.variables: dict[tuple[str, str], str] = {}
        self.hung_up: list[str] = []
        self.bridges: list[dict[str, Any]] = []  # what GET /bridges lists

    async def request(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        self.requests.append((method, path, dict(params or {})))
        return self.bridges if (method, path) == ("GET", "/bridges") else None

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int = 1
    ) -> None:
        self.requests.append(("POST", f"/channels/{channel_id}/continue", {"context": context}))

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        self.variables[(channel_id, name)] = value

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.hung_up.append(channel_id)


class FlakyRepository(DialerRepository):
    """The real repository, whose campaign list fails the first ``failures`` times."""

    def __init__(self, db: Database, failures: int) -> None:
        super().__init__(db)
        self.failures = failures
        self.listed = 0

    async def campaign_heads(self) -> dict[str, CampaignHead]:
        self.listed += 1
        if self.listed <= self.failures:
            raise StoreError("database is locked")
        return await super().campaign_heads()


class DownRepository(DialerRepository):
    """The real repository, whose result writes fail while ``down`` (the store unreachable)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.down = True

    async def record_result(self, *args: Any, **kwargs: Any) -> datetime | None:
        if self.down:
            raise StoreError("couldn't get a connection after 5.00 sec")
        return await super().record_result(*args, **kwargs)


SETTINGS = {
    "trunk": "trunk", "caller_id": "Callctl <5550100>", "dialing_mode": "progressive",
    "agents": {"agent_ids": ["1001"]}, "agent_wrapup_seconds": 0,
}


async def running_campaign(
    repo: DialerRepository, phones: list[str], **settings: Any
) -> None:
    now = datetime.fromtimestamp(NOON_NY, UTC)
    await repo.create_campaign("c1", parse_campaign_settings({**SETTINGS, **settings}), now)
    await repo.import_leads("c1", [Lead(p, timezone="America/New_York") for p in phones], now)
    await repo.change_state("c1", "start", now)


def service(
    repo: DialerRepository, ami: FakeAmi, ari: FakeAri, writes: WriteBacklog | None = None,
    seated_agents: tuple[str, ...] = (), clock: Callable[[], float] | None = None,
) -> DialerService:
    ticks = itertools.count()
    metrics = Metrics(SnapshotProviders(components=lambda: ComponentUp(True, True, True)))
    return DialerService(
        ami, ari, LiveModel(clock=lambda: NOON_NY), repo, metrics,
        WriteBacklog() if writes is None else writes,
        worker="w1",
        agents_of_queue=lambda _queue: (),
        clock=clock or (lambda: NOON_NY + next(ticks) * 0.01),
        seated_agents=seated_agents,
    )


async def until(check: Any, what: str, within_s: float = 5.0) -> None:
    for _ in range(int(within_s / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {within_s} s waiting for {what}")


def stasis(channel_id: str, *args: str) -> StasisStart:
    return StasisStart(channel=AriChannel(id=channel_id, name=f"PJSIP/{channel_id}"), args=args)


async def test_a_store_error_in_the_tick_does_not_end_the_dialer(store: Database) -> None:
    repo = FlakyRepository(store, failures=2)
    await running_campaign(repo, ["+12125550101"])
    ami, ari = FakeAmi(), FakeAri()
    dialer = service(repo, ami, ari)
    await dialer.reconcile()
    loop = asyncio.create_task(dialer.run())
    try:
        await until(lambda: ami.originates, "the agent to be called after two failed ticks")
        assert repo.listed >= 3 and not loop.done()
    finally:
        loop.cancel()


async def test_a_campaign_whose_stored_settings_no_longer_validate_is_left_alone(
    store: Database,
) -> None:
    """Stored by a release that checked less (an agent id that is no phone): the error names
    the campaign and the key, and the other campaigns dial on."""
    repo = DialerRepository(store)
    await running_campaign(repo, ["+12125550101"])
    now = datetime.fromtimestamp(NOON_NY, UTC)
    await repo.create_campaign("old", parse_campaign_settings(SETTINGS), now)
    await repo.change_state("old", "start", now)
    stored = parse_campaign_settings(SETTINGS).model_dump(mode="json")
    stored["agents"]["agent_ids"] = ["agent-7"]
    await store.execute("UPDATE campaigns SET settings_json = :s WHERE name = 'old'",
                        {"s": json.dumps(stored)})
    with pytest.raises(StoredSettingsInvalid, match=r"campaign 'old': .*agents\.agent_ids\[0\]"):
        await repo.campaign("old")
    ami = FakeAmi()
    dialer = service(repo, ami, FakeAri())
    await dialer.reconcile()
    with capture_logs() as logs:
        await dialer._tick()
        await dialer._tick()
    assert list(dialer.campaigns) == ["c1"]
    assert ami.originates  # c1's agent is called
    assert [e["campaign"] for e in logs if e["event"] == "dialer.campaign_unreadable"] == ["old"]


@pytest.mark.parametrize(("seated", "called"), [((), ["1001"]), (("1001", "1002"), ["1001"]),
                                                (("1002",), [])])
async def test_a_worker_seats_only_the_campaign_agents_it_is_given(
    store: Database, seated: tuple[str, ...], called: list[str]
) -> None:
    repo = DialerRepository(store)
    await running_campaign(repo, ["+12125550101"])  # its one agent: 1001
    dialer = service(repo, FakeAmi(), FakeAri(), seated_agents=seated)
    await dialer.reconcile()
    await dialer._tick()
    assert dialer.campaigns["c1"].agent_ids == tuple(called)


async def test_a_gone_worker_s_agents_are_seated_until_it_renews_again(store: Database) -> None:
    repo = DialerRepository(store)
    await running_campaign(repo, ["+12125550101"], agents={"agent_ids": ["1001", "1002"]})
    now = datetime.fromtimestamp(NOON_NY, UTC)
    await repo.renew_leases("w2", ["1002"], now - timedelta(seconds=31))  # its lease ran out
    ari, clock = FakeAri(), [NOON_NY]
    dialer = service(repo, FakeAmi(), ari, seated_agents=("1001",), clock=lambda: clock[0])
    with capture_logs() as logs:
        await dialer.reconcile()
        await dialer._tick()
        machine = dialer.campaigns["c1"]
        # just started: w2 may be starting too, and gets a lease's time to renew
        assert machine.agent_ids == ("1001",)
        clock[0] += 30
        await dialer._tick()
    assert machine.agent_ids == ("1001", "1002")
    assert [lease.worker for lease in await repo.worker_leases()] == ["w1", "w2"]
    covered = [entry for entry in logs if entry["event"] == "dialer.agents_covered"]
    assert [(e["agents"], e["previous"], e["workers_gone"]) for e in covered] == [
        (["1002"], [], ["w2"])]
    assert b"\ncallctl_dialer_agents_covered 1.0\n" in await dialer._metrics.render()
    # w2 is back: its agent's line (still ringing here) is let go and w2 seats it again
    leg = machine.agents["1002"]
    await repo.renew_leases("w2", ["1002"], datetime.fromtimestamp(clock[0], UTC))
    await dialer._keep_leases()
    await dialer._tick()
    assert machine.agent_ids == ("1001",)
    await until(lambda: leg.channel_id in ari.hung_up, "the covered agent's line let go")
    assert b"\ncallctl_dialer_agents_covered 0.0\n" in await dialer._metrics.render()


async def test_a_restart_keeps_the_gone_worker_s_agents_whose_lines_it_kept(
    store: Database,
) -> None:
    repo = DialerRepository(store)
    await running_campaign(repo, ["+12125550101"], agents={"agent_ids": ["1001", "1002"]})
    now = datetime.fromtimestamp(NOON_NY, UTC)
    await repo.renew_leases("w2", ["1002"], now - timedelta(seconds=31))
    ari = FakeAri()
    # w1 covered 1002 before its restart, and the line is still up in its bridge
    channel = "agent-w1-0123456789ab"
    ari.bridges = [{"id": f"agent-bridge-{channel}", "name": "1002:c1", "channels": [channel]}]
    dialer = service(repo, FakeAmi(), ari, seated_agents=("1001",))
    dialer._model.apply(Newchannel(
        uniqueid=channel, channel="PJSIP/1002-1", linkedid=channel, state_desc="Up"))
    await dialer.reconcile()
    machine = dialer.campaigns["c1"]
    leg = machine.agents["1002"]
    assert (leg.channel_id, leg.state) == (channel, "ready")
    await dialer._tick()
    assert machine.agent_ids == ("1001", "1002") and channel not in ari.hung_up


@dataclass
class Dialing:
    repo: DialerRepository
    ami: FakeAmi
    ari: FakeAri
    dialer: DialerService


@contextlib.asynccontextmanager
async def dialing(store: Database, **settings: Any) -> AsyncIterator[Dialing]:
    """A running one-lead campaign, its runner looping until the block ends, the agent's leg
    called."""
    repo = DialerRepository(store)
    await running_campaign(repo, ["+12125550101"], **settings)
    ami, ari = FakeAmi(), FakeAri()
    dialer = service(repo, ami, ari)
    await dialer.reconcile()
    loop = asyncio.create_task(dialer.run())
    try:
        await until(lambda: len(ami.originates) == 1, "the agent's leg")
        yield Dialing(repo, ami, ari, dialer)
    finally:
        loop.cancel()


async def test_the_runner_carries_out_a_call_from_claim_to_result(store: Database) -> None:
    async with dialing(store) as d:
        repo, ami, ari, dialer = d.repo, d.ami, d.ari, d.dialer
        # the agent is called into Stasis, answers, and is seated in a bridge of its own
        agent_leg = ami.originates[0]
        assert agent_leg["channel"] == "PJSIP/1001" and agent_leg["application"] == "Stasis"
        dialer.on_agent_stasis(stasis(agent_leg["channel_id"], "agent", "c1", "1001"))
        bridge = f"/bridges/agent-bridge-{agent_leg['channel_id']}"
        seat = {"type": "mixing", "name": "1001:c1"}  # whose seat: a restart adopts it by this
        await until(lambda: ("POST", bridge, seat) in ari.requests, "the bridge")
        # one ready agent, progressive: one customer is claimed and originated on the trunk
        await until(lambda: len(ami.originates) == 2, "the customer's call")
        customer = ami.originates[1]
        attempt_id = customer["channel_id"]
        assert customer["channel"] == "PJSIP/+12125550101@trunk"
        assert customer["action_id"] == attempt_id
        handler = customer["variables"]["CHANNEL(hangup_handler_push)"]
        assert handler == "callctl-attempt-end\\,s\\,1"  # commas escaped for Originate
        assert customer["variables"]["CALLCTL_AMD_ARGS"] == ""  # untuned: amd.conf decides
        (opened,) = await repo.open_attempts("c1")
        assert opened.attempt_id == attempt_id and opened.channel == attempt_id
        # the line answers (AMD listening): pacing counts the call as screened from now
        dialer.on_ami_event(CallctlPickedUp(
            uniqueid=attempt_id, channel="PJSIP/trunk-1", linkedid=attempt_id, attempt=attempt_id
        ))
        machine = dialer.campaigns["c1"]
        await until(lambda: machine.attempts[attempt_id].state == "screening", "screening")
        # classified human: the ledger says so, the customer joins the agent's bridge
        dialer.on_customer_stasis(stasis(attempt_id, "dialer", "c1", attempt_id))
        joined = ("POST", f"{bridge}/addChannel", {"channel": attempt_id})
        await until(lambda: joined in ari.requests, "the customer in the agent's bridge")
        await until(lambda: ami.astdb.get(f"{FAMILY}/{attempt_id}") == ",1,human", "ledger")
        assert ari.variables[(attempt_id, "CALLCTL_RESULT")] == "human"
        # it hangs up: one result in the store, the ledger record deleted
        dialer.on_ami_event(
            Hangup(uniqueid=attempt_id, channel="PJSIP/trunk-1", linkedid=attempt_id, cause=16)
        )
        await until(lambda: f"{FAMILY}/{attempt_id}" not in ami.astdb, "the ledger cleaned")
        status = await repo.status("c1", datetime.fromtimestamp(NOON_NY, UTC))
        assert status["attempts"] == {"open": 0, "human": 1}, status
        assert await repo.open_attempts("c1") == []


async def test_an_agent_s_key_in_wrapup_is_stored_as_the_call_s_disposition(
    store: Database,
) -> None:
    dispositions = {"9": {"name": "do-not-call", "lead": "dnc"}}
    async with dialing(store, agent_wrapup_seconds=60, dispositions=dispositions) as d:
        agent_leg = d.ami.originates[0]["channel_id"]
        d.dialer.on_agent_stasis(stasis(agent_leg, "agent", "c1", "1001"))
        await until(lambda: len(d.ami.originates) == 2, "the customer's call")
        attempt_id = d.ami.originates[1]["channel_id"]
        d.dialer.on_customer_stasis(stasis(attempt_id, "dialer", "c1", attempt_id))
        machine = d.dialer.campaigns["c1"]
        await until(lambda: machine.agents["1001"].state == "on_call", "the customer connected")
        d.dialer.on_ami_event(
            Hangup(uniqueid=attempt_id, channel="PJSIP/trunk-1", linkedid=attempt_id, cause=16)
        )
        await until(lambda: machine.agents["1001"].state == "wrapup", "the agent in wrap-up")

        def key(digit: str, received: bool = True) -> DtmfEnd:
            return DtmfEnd(uniqueid=agent_leg, channel="PJSIP/1001-1", linkedid=agent_leg,
                           digit=digit, received=received)

        d.dialer.on_ami_event(key("9", received=False))  # played to the agent: not a key press
        d.dialer.on_ami_event(key("4"))  # no such disposition
        await asyncio.sleep(0.1)
        assert machine.agents["1001"].state == "wrapup"
        d.dialer.on_ami_event(key("9"))
        await until(lambda: machine.agents["1001"].state == "ready", "the wrap-up ended by it")

        async def disposition() -> str | None:
            row = await store.fetchone(
                "SELECT disposition FROM attempts WHERE attempt_id = :id", {"id": attempt_id})
            return row["disposition"] if row else None

        for _ in range(250):
            if await disposition():
                break
            await asyncio.sleep(0.02)
        assert await disposition() == "do-not-call"
        [listed] = await d.repo.list_dnc(GLOBAL_DNC)
        assert listed["phone"] == "+12125550101"
        # each key in wrap-up was answered with a tone on the agent's leg, whose end is logged
        plays = [params for method, path, params in d.ari.requests
                 if (method, path) == ("POST", f"/channels/{agent_leg}/play")]
        assert [params["media"] for params in plays] == ["sound:beeperr", "sound:beep"]
        with capture_logs() as logs:
            for params in plays:
                d.dialer.on_playback_finished(PlaybackFinished(
                    playback_id=params["playbackId"], state="done"))
            d.dialer.on_playback_finished(PlaybackFinished(playback_id="other", state="done"))
        assert [(e["event"], e["tone"], e["state"]) for e in logs] == [
            ("dialer.key_tone", "refused", "done"), ("dialer.key_tone", "taken", "done")]


async def test_settings_updated_in_the_store_reach_the_machine_and_the_next_call(
    store: Database,
) -> None:
    async with dialing(store) as d:
        machine = d.dialer.campaigns["c1"]
        assert machine.settings.wrapup_seconds == 0
        updated = parse_campaign_settings({
            **SETTINGS, "trunk": "carrier-b", "caller_id": "Sales <5550199>",
            "agent_wrapup_seconds": 7, "line_cap": 3,
        })
        await d.repo.update_settings("c1", updated, datetime.fromtimestamp(NOON_NY, UTC))
        await until(lambda: machine.settings.wrapup_seconds == 7, "the new settings followed")
        assert machine.settings.pacing.line_cap == 3
        agent_leg = d.ami.originates[0]
        d.dialer.on_agent_stasis(stasis(agent_leg["channel_id"], "agent", "c1", "1001"))
        await until(lambda: len(d.ami.originates) == 2, "the customer's call")
        customer = d.ami.originates[1]
        assert customer["channel"] == "PJSIP/+12125550101@carrier-b"
        assert customer["caller_id"] == "Sales <5550199>"


async def claimed_before_a_crash(store: Database) -> tuple[DialerRepository, ClaimedAttempt]:
    """A campaign with one lead claimed a minute ago by this worker, which then died."""
    repo = DialerRepository(store)
    await running_campaign(repo, ["+12125550101"])
    (claimed,) = await repo.claim("c1", 1, "w1", datetime.fromtimestamp(NOON_NY - 60, UTC))
    return repo, claimed


async def test_an_open_attempt_nothing_is_known_of_gives_its_lead_back(store: Database) -> None:
    repo, claimed = await claimed_before_a_crash(store)
    await service(repo, FakeAmi(), FakeAri()).reconcile()  # no channel, no record: never dialed
    assert await repo.open_attempts("c1") == []
    rows = {row["attempt_id"]: row async for row in repo.export_rows("c1")}
    assert rows[claimed.attempt_id]["result"] == "not_dialed"
    lead = await store.fetchone("SELECT state, attempts FROM leads WHERE campaign = 'c1'", {})
    assert lead is not None and (lead["state"], lead["attempts"]) == ("ready", 0)


async def test_a_result_the_store_refuses_waits_and_lands_once_it_answers(
    store: Database,
) -> None:
    _, claimed = await claimed_before_a_crash(store)
    repo, ami, writes = DownRepository(store), FakeAmi(), WriteBacklog(retry_s=0.01)
    record = f"{FAMILY}/{claimed.attempt_id}"
    ami.astdb[record] = "17,,"  # ended busy while the store was down
    await service(repo, ami, FakeAri(), writes).reconcile()
    assert len(writes) == 1
    assert record in ami.astdb  # kept: the only account of it until the write lands
    replaying = asyncio.create_task(writes.run())
    try:
        repo.down = False
        await until(lambda: len(writes) == 0, "the waiting result to land")
    finally:
        replaying.cancel()
    status = await repo.status("c1", datetime.fromtimestamp(NOON_NY, UTC))
    assert status["attempts"] == {"open": 0, "busy": 1}, status
    assert record not in ami.astdb


async def test_an_open_attempt_with_a_hangup_record_is_settled_from_it(store: Database) -> None:
    repo, claimed = await claimed_before_a_crash(store)
    ami = FakeAmi()
    ami.astdb[f"{FAMILY}/{claimed.attempt_id}"] = "17,,"  # the hangup handler's: busy
    await service(repo, ami, FakeAri()).reconcile()
    status = await repo.status("c1", datetime.fromtimestamp(NOON_NY, UTC))
    assert status["attempts"] == {"open": 0, "busy": 1}, status
    lead = await store.fetchone("SELECT attempts FROM leads WHERE campaign = 'c1'", {})
    assert lead is not None and lead["attempts"] == 1


async def test_a_restart_adopts_the_agent_legs_seated_in_their_bridges_with_their_customers(
    store: Database,
) -> None:
    repo, claimed = await claimed_before_a_crash(store)
    attempt_id = claimed.attempt_id
    ami, ari = FakeAmi(), FakeAri()
    ami.astdb[f"{FAMILY}/{attempt_id}"] = ",1,human"  # bridged before the crash
    dialer = service(repo, ami, ari)
    legs = {"agent-w1-talking": "PJSIP/1001-1", "agent-w1-older": "PJSIP/1002-1",
            attempt_id: "PJSIP/trunk-1", "customer-of-older": "PJSIP/trunk-2"}
    for uniqueid, name in legs.items():
        dialer._model.apply(Newchannel(
            uniqueid=uniqueid, channel=name, linkedid=uniqueid, state_desc="Up"))
    ari.bridges = [
        {"id": "agent-bridge-agent-w1-talking", "name": "1001:c1",
         "channels": ["agent-w1-talking", attempt_id]},
        # a bridge whose seat is not named (or names no campaign): nobody can follow it
        {"id": "agent-bridge-agent-w1-older", "name": "",
         "channels": ["agent-w1-older", "customer-of-older"]},
        {"id": "agent-bridge-agent-w2-other", "name": "1003:c1", "channels": ["agent-w2-other"]},
    ]
    with capture_logs() as logs:
        await dialer.reconcile()
    machine = dialer.campaigns["c1"]
    leg = machine.agents["1001"]
    assert (leg.channel_id, leg.state, leg.customer) == ("agent-w1-talking", "on_call", attempt_id)
    assert [e["attempt_id"] for e in logs if e["event"] == "dialer.agent_leg_adopted"] == [
        attempt_id]
    assert sorted(ari.hung_up) == ["agent-w1-older", "customer-of-older"]
    assert ("DELETE", "/bridges/agent-bridge-agent-w1-older", {}) in ari.requests
    assert ("DELETE", "/bridges/agent-bridge-agent-w1-talking", {}) not in ari.requests
    # the customer hangs up: a human call, and the agent is not called again but keeps its leg
    loop = asyncio.create_task(dialer.run())
    try:
        dialer.on_ami_event(
            Hangup(uniqueid=attempt_id, channel="PJSIP/trunk-1", linkedid=attempt_id, cause=16))
        await until(lambda: f"{FAMILY}/{attempt_id}" not in ami.astdb, "the result stored")
        await until(lambda: leg.state == "ready", "the agent ready again")
        await asyncio.sleep(1.0)  # two ticks
    finally:
        loop.cancel()
    assert not [o for o in ami.originates if o["channel"].startswith("PJSIP/100")]
    status = await repo.status("c1", datetime.fromtimestamp(NOON_NY, UTC))
    assert status["attempts"] == {"open": 0, "human": 1}, status


async def test_a_restart_resumes_an_idle_adopted_agent_s_wrapup_and_takes_its_key(
    store: Database,
) -> None:
    repo = DialerRepository(store)
    dispositions = {"9": {"name": "do-not-call", "lead": "dnc"}}
    await running_campaign(repo, ["+12125550101", "+12125550102"], agent_wrapup_seconds=60,
                           dispositions=dispositions)
    now = datetime.fromtimestamp(NOON_NY, UTC)
    # the last call of 1001 before the crash: connected 30 s ago, 10 s of talk, no key yet
    (done,) = await repo.claim("c1", 1, "w1", now - timedelta(seconds=40))
    await repo.record_connected(done.attempt_id, "1001", now - timedelta(seconds=30))
    await repo.record_result(done.attempt_id, Result.HUMAN, now - timedelta(seconds=19), 16,
                             AttemptTiming(now - timedelta(seconds=30), talk_seconds=10.0))
    ami, ari = FakeAmi(), FakeAri()
    dialer = service(repo, ami, ari)
    dialer._model.apply(Newchannel(
        uniqueid="agent-w1-idle", channel="PJSIP/1001-1", linkedid="agent-w1-idle",
        state_desc="Up"))
    ari.bridges = [
        {"id": "agent-bridge-agent-w1-idle", "name": "1001:c1", "channels": ["agent-w1-idle"]}]
    with capture_logs() as logs:
        await dialer.reconcile()
    leg = dialer.campaigns["c1"].agents["1001"]
    assert (leg.state, leg.wrapup_of) == ("wrapup", done.attempt_id)
    (adopted,) = [e for e in logs if e["event"] == "dialer.agent_leg_adopted"]
    assert (adopted["state"], adopted["wrapup_of"]) == ("wrapup", done.attempt_id)
    assert leg.since == pytest.approx(NOON_NY - 20)  # the talk's end: 40 of its 60 s are left
    dialer.on_ami_event(DtmfEnd(uniqueid="agent-w1-idle", channel="PJSIP/1001-1",
                                linkedid="agent-w1-idle", digit="9", received=True))
    await until(lambda: leg.state == "ready", "the wrap-up ended by the key")
    for _ in range(250):
        row = await store.fetchone("SELECT disposition FROM attempts WHERE attempt_id = :id",
                                   {"id": done.attempt_id})
        if row and row["disposition"]:
            break
        await asyncio.sleep(0.02)
    assert row is not None and row["disposition"] == "do-not-call"
    assert not ami.originates  # the agent was not called


async def test_a_survivor_settles_a_dead_worker_s_attempts_once_their_lease_ran_out(
    store: Database,
) -> None:
    repo, claimed = await claimed_before_a_crash(store)  # w1 claimed it a minute ago, then died
    claim_time = datetime.fromtimestamp(NOON_NY - 60, UTC)
    survivor = DialerService(
        FakeAmi(), FakeAri(), LiveModel(clock=lambda: NOON_NY), repo,
        Metrics(SnapshotProviders(components=lambda: ComponentUp(True, True, True))),
        WriteBacklog(), worker="w2", agents_of_queue=lambda _queue: (), clock=lambda: NOON_NY,
    )
    # still within the lease after a renewal by w1: not the survivor's to settle
    await repo.renew_leases("w1", (), datetime.fromtimestamp(NOON_NY - 10, UTC))
    await survivor.reconcile()
    await survivor._keep_leases()
    assert [a.attempt_id for a in await repo.open_attempts("c1")] == [claimed.attempt_id]
    # w1 renews no more: 30 s later its attempt is lost, its lead spent and kept back until the
    # call it may still have up has surely ended (ring timeout + the unbounded-call hold)
    await repo.renew_leases("w1", (), claim_time)
    await survivor._keep_leases()
    assert await repo.open_attempts("c1") == []
    rows = {row["attempt_id"]: row async for row in repo.export_rows("c1")}
    assert rows[claimed.attempt_id]["result"] == "lost"
    lead = await store.fetchone(
        "SELECT state, attempts, next_attempt_at FROM leads WHERE campaign = 'c1'", {}
    )
    assert lead is not None and (lead["state"], lead["attempts"]) == ("ready", 1)
    settings = parse_campaign_settings(SETTINGS)
    assert from_iso(lead["next_attempt_at"]) == claim_time + longest_call(settings)


async def test_a_worker_s_abandon_windows_count_every_worker_s_live_answers(
    store: Database,
) -> None:
    """The abandon rate the regulators judge is the campaign's: a worker's feedback reads the
    other workers' live answers from the store, each once, beside its own (which it records as
    they happen, so the store's copy of them is not counted again)."""
    repo = DialerRepository(store)
    await running_campaign(repo, [f"+1212555010{n}" for n in range(4)])
    clock = [NOON_NY]
    dialer = DialerService(
        FakeAmi(), FakeAri(), LiveModel(clock=lambda: NOON_NY), repo,
        Metrics(SnapshotProviders(components=lambda: ComponentUp(True, True, True))),
        WriteBacklog(), worker="w1", agents_of_queue=lambda _queue: (), clock=lambda: clock[0],
    )
    await dialer.reconcile()
    await dialer._tick()
    windows = dialer.campaigns["c1"].stats.window_totals
    assert windows(clock[0]) == {1.0: (0, 0), 24.0: (0, 0), 720.0: (0, 0)}
    ended = datetime.fromtimestamp(NOON_NY + 1, UTC)
    theirs = await repo.claim("c1", 3, "w2", ended)
    [mine] = await repo.claim("c1", 1, "w1", ended)
    for attempt, result in zip([*theirs, mine], [Result.HUMAN, Result.ABANDONED, Result.BUSY,
                                                 Result.ABANDONED], strict=True):
        await repo.record_result(attempt.attempt_id, result, ended)
    for _ in range(3):  # read again and again: each answer counted once
        clock[0] += ANSWERS_READ_S
        await dialer._tick()
    # w2's human and abandoned call; not its busy one, nor w1's own abandon (its machine
    # counted that one when it played the safe-harbor message)
    assert windows(clock[0]) == {1.0: (2, 1), 24.0: (2, 1), 720.0: (2, 1)}
