"""The campaign runner: paces, originates, connects answered customers to agents, records results.

How an outbound call flows (dialplan in ``dialplans/dialer.conf``):

- **Agents** sit on a nailed-up connection: when a campaign runs, the runner originates a call to
  each of its agents' phones into our Stasis app (``agent,<campaign>,<agent>``) and parks the
  answered leg alone in a mixing bridge of its own. Connecting a customer is then one
  ``addChannel`` to that bridge: milliseconds, no ringing.
- **Customers**: each tick, ``pacing.decide`` says how many calls to launch; the runner claims
  that many leads in one store transaction (each attempt row is committed as ``dialing`` before
  its originate goes out) and sends one AMI Originate per lead, with the attempt id as the
  channel's uniqueid and as the ActionID, never re-sent. An answered call runs AMD if enabled,
  then enters Stasis (``dialer,<campaign>,<attempt>``): the longest-idle ready agent gets it, or,
  if none is ready within 2 s, it is sent to the safe-harbor message and counts as abandoned.
- **Results** come from the customer channel's Hangup cause plus what the runner saw (answered,
  AMD verdict, agent connected): ``policy.classify_hangup``; never from OriginateResponse alone.
- **Crash safety**: a hangup handler pushed onto every customer channel at origination writes
  ``cause,answered,result`` into AstDB; for answered calls the runner writes ``,1,`` (answered)
  and ``,1,human`` (connected) itself, since Asterisk refuses DB() in the hangup handler of a
  channel that was in Stasis. After a restart (or an AMI reconnect) each open attempt of
  this worker is either still a live channel (adopted and followed to its end) or has a
  hangup record in AstDB (classified from it) or is unknown (recorded as ``failed``, so it is
  retried later under the retry policy, never dialed twice at once and never lost). An adopted
  attempt is classified from its AstDB record when it ends, since what happened to it before the
  restart (abandoned, connected) is only known there. Agent legs of this worker left over from
  before the restart are hung up: their bridges belong to a controller that is gone.
- **Recording**: when a customer is connected to an agent, the call is handed to the recorder,
  which records it if the campaign's recording policy says so (MixMonitor on the customer leg).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controller.asterisk.ami import AmiClient, AmiError
from controller.asterisk.ari import AriClient, AriError
from controller.dialer.pacing import (
    PacingDecision,
    PacingInput,
    PacingMode,
    PacingSettings,
    PacingStats,
    decide,
)
from controller.dialer.policy import Result, classify_hangup
from controller.dialer.repository import (
    AttemptTiming,
    DialerRepository,
    DialerStoreError,
    FinishedAttempt,
)
from controller.dialer.settings import CampaignSettings
from controller.logs import get_logger
from controller.metrics.registry import Metrics
from controller.metrics.snapshot import ABANDON_WINDOWS, AbandonWindow, DialerGauges
from controller.recording.policy import CallFacts
from controller.recording.recorder import Recorder
from controller.state.model import LiveModel
from controller.tasks import TaskSet

log = get_logger("dialer")

TICK_S = 0.5
ABANDON_AFTER_S = 2.0
AGENT_RETRY_S = 10.0
ORIGINATE_FAILURE_GRACE_S = 2.0
ASTDB_FAMILY = "callctl_attempt"


@dataclass
class AgentLeg:
    agent_id: str
    channel_id: str
    state: str = "dialing"  # dialing -> ready -> on_call -> wrapup -> ready ...; gone
    since: float = 0.0
    bridge_id: str | None = None
    customer: str | None = None
    last_failure: float = 0.0


@dataclass
class LiveAttempt:
    attempt_id: str
    phone: str
    launched_at: float
    answered_at: float | None = None
    machine: bool = False
    agent_id: str | None = None
    abandoned: bool = False
    finished: bool = False
    needed_agent: bool = False
    adopted: bool = False  # followed again after a restart: its past is in AstDB
    channel_name: str = ""


@dataclass
class CampaignRun:
    name: str
    settings: CampaignSettings
    state: str
    stats: PacingStats
    agents: dict[str, AgentLeg] = field(default_factory=dict)
    attempts: dict[str, LiveAttempt] = field(default_factory=dict)
    waiting: deque[str] = field(default_factory=deque)
    launches: deque[float] = field(default_factory=deque)
    last_decision: PacingDecision | None = None
    last_launch: float = -math.inf
    talk_s: float = 0.0
    logged_in_s: float = 0.0

    @property
    def pacing(self) -> PacingSettings:
        return PacingSettings(
            mode=PacingMode(self.settings.dialing_mode),
            abandon_target=self.settings.abandon.target_percent / 100.0,
            line_cap=self.settings.line_cap,
            cps_cap=self.settings.calls_per_second,
            ring_timeout=float(self.settings.ring_timeout_seconds),
        )


def pacing_stats(settings: CampaignSettings) -> PacingStats:
    """History whose abandon windows are the campaign's regulatory windows plus the last hour."""
    return PacingStats(window_hours=(1.0, *(float(h) for h in settings.abandon.windows_hours)))


def replay_history(
    stats: PacingStats, history: Sequence[FinishedAttempt], wrapup_s: float
) -> None:
    """Feed finished attempts (oldest first) to ``stats`` as the runner fed them live."""
    for attempt in history:
        # an answered call's fate is known when it is handed over, any other's when it ends
        known_at = attempt.answered_at or attempt.ended_at
        stats.record_attempt(
            connected=attempt.answered_at is not None,
            seconds=(known_at - attempt.started_at).total_seconds(),
        )
        if attempt.talk_seconds is not None:
            stats.record_talk(attempt.talk_seconds)
            stats.record_wrap(wrapup_s)


def pacing_input(run: CampaignRun, now: float) -> PacingInput:
    legs = [leg for leg in run.agents.values() if leg.state in ("ready", "on_call", "wrapup")]
    while run.launches and run.launches[0] < now - 1.0:
        run.launches.popleft()
    return PacingInput(
        now=now,
        agents_logged_in=len(legs),
        agents_ready=sum(1 for leg in legs if leg.state == "ready"),
        talk_elapsed=tuple(now - leg.since for leg in legs if leg.state == "on_call"),
        wrap_elapsed=tuple(now - leg.since for leg in legs if leg.state == "wrapup"),
        in_flight_elapsed=tuple(
            now - a.launched_at for a in run.attempts.values() if a.answered_at is None
        ),
        calls_waiting=len(run.waiting),
        lines_in_use=len(run.attempts),
        launches_last_second=len(run.launches),
        seconds_since_last_launch=now - run.last_launch,
    )


class DialerService:
    def __init__(
        self,
        ami: AmiClient,
        ari: AriClient,
        model: LiveModel,
        repo: DialerRepository,
        metrics: Metrics,
        worker: str,
        agents_of_queue: Callable[[str], tuple[str, ...]],
        recorder: Recorder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ami = ami
        self._ari = ari
        self._model = model
        self._repo = repo
        self._metrics = metrics
        self._worker = worker
        self._agents_of_queue = agents_of_queue
        self._recorder = recorder
        self._clock = clock
        self.campaigns: dict[str, CampaignRun] = {}
        self._attempt_campaign: dict[str, str] = {}
        self._agent_channels: dict[str, tuple[str, str]] = {}
        self._tasks = TaskSet("dialer")
        self._reconciled = asyncio.Event()

    @property
    def _agent_channel_prefix(self) -> str:
        """Agent legs are named after the worker, so a restarted worker knows its leftovers."""
        return f"agent-{self._worker}-"

    def _now_dt(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # -- the tick -------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            if not (self._ami.connected and self._ari.connected and self._reconciled.is_set()):
                continue
            try:
                await self._tick()
            except (DialerStoreError, AmiError, AriError) as error:
                log.warning("dialer.tick_failed", error=str(error))

    async def _tick(self) -> None:
        now = self._clock()
        for row in await self._repo.list_campaigns():
            run = self.campaigns.get(row["name"])
            if run is None:
                run = await self._load(row["name"])
            if run.state != row["state"]:
                log.info(
                    "campaign.state_changed",
                    campaign=run.name,
                    state=row["state"],
                    previous=run.state,
                )
                run.state = row["state"]
            self._account_time(run, now)
            if run.state == "running":
                self._ensure_agents(run, now)
                await self._launch(run, now)
            elif run.state == "stopped" and not run.attempts:
                self._release_agents(run)

    async def _load(self, name: str) -> CampaignRun:
        """Start following a campaign; its history is seeded from the store, so the 24 h and
        30 day abandon limits still count what happened before a restart, and predictive
        pacing resumes at once instead of running progressive until it has learned again."""
        campaign = await self._repo.campaign(name)
        run = CampaignRun(
            campaign.name, campaign.settings, campaign.state, pacing_stats(campaign.settings)
        )
        for ended, abandoned in await self._repo.live_answers(name, self._now_dt()):
            run.stats.record_live_answer(ended.timestamp(), abandoned=abandoned)
        history = await self._repo.pacing_history(name, run.stats.sample_size)
        replay_history(run.stats, history, campaign.settings.agent_wrapup_seconds)
        self.campaigns[name] = run
        self._metrics.declare_campaign(name)
        return run

    def _account_time(self, run: CampaignRun, now: float) -> None:
        logged = sum(1 for leg in run.agents.values() if leg.state != "dialing")
        talking = sum(1 for leg in run.agents.values() if leg.state == "on_call")
        run.logged_in_s += logged * TICK_S
        run.talk_s += talking * TICK_S

    def _campaign_agents(self, run: CampaignRun) -> tuple[str, ...]:
        group = run.settings.agents
        return group.agent_ids or self._agents_of_queue(group.queue or "")

    def _ensure_agents(self, run: CampaignRun, now: float) -> None:
        for agent_id in self._campaign_agents(run):
            leg = run.agents.get(agent_id)
            if leg is not None and (leg.state != "gone" or now - leg.last_failure < AGENT_RETRY_S):
                continue
            channel_id = f"{self._agent_channel_prefix}{uuid.uuid4().hex[:12]}"
            run.agents[agent_id] = AgentLeg(agent_id, channel_id, since=now)
            self._agent_channels[channel_id] = (run.name, agent_id)
            self._tasks.spawn(self._call_agent(run, agent_id, channel_id))

    async def _call_agent(self, run: CampaignRun, agent_id: str, channel_id: str) -> None:
        try:
            await self._ami.originate(
                f"PJSIP/{agent_id}",
                channel_id,
                action_id=channel_id,
                application="Stasis",
                data=f"{self._ari.app},agent,{run.name},{agent_id}",
                timeout_s=30,
                caller_id=f'"{run.name}" <{run.name}>',
            )
            log.info("dialer.agent_calling", campaign=run.name, agent_id=agent_id)
        except AmiError as error:
            self._agent_gone(channel_id, f"originate refused: {error}")

    def _release_agents(self, run: CampaignRun) -> None:
        for leg in run.agents.values():
            if leg.state in ("ready", "wrapup"):
                leg.state = "gone"
                self._tasks.spawn(self._hangup_quietly(leg.channel_id))

    async def _launch(self, run: CampaignRun, now: float) -> None:
        snapshot = pacing_input(run, now)
        decision = decide(snapshot, run.pacing, run.stats)
        run.last_decision = decision
        if decision.launch <= 0:
            return
        claimed = await self._repo.claim(run.name, decision.launch, self._worker, self._now_dt())
        if claimed:
            log.info(
                "dialer.launching",
                campaign=run.name,
                calls=len(claimed),
                reason=decision.reason,
                dial_level=round(decision.dial_level, 2),
            )
        for attempt in claimed:
            run.launches.append(now)
            run.last_launch = now
            live = LiveAttempt(attempt.attempt_id, attempt.phone, launched_at=now)
            run.attempts[live.attempt_id] = live
            self._attempt_campaign[live.attempt_id] = run.name
            self._tasks.spawn(self._originate(run, live))

    async def _originate(self, run: CampaignRun, live: LiveAttempt) -> None:
        settings = run.settings
        variables = {
            "CALLCTL_CAMPAIGN": run.name,
            "CALLCTL_ATTEMPT": live.attempt_id,
            "CALLCTL_AMD": "1" if settings.amd.enabled else "0",
            "CALLCTL_AMD_MESSAGE": settings.amd.message_sound
            if settings.amd.action == "leave_message"
            else "",
            "CALLCTL_SAFE_HARBOR": settings.abandon.safe_harbor_sound,
            "CALLCTL_MAX_CALL_S": str(settings.max_call_seconds),
            "CHANNEL(hangup_handler_push)": "callctl-attempt-end,s,1",
        }
        # Asterisk splits an Originate's Variable header at commas: escape them, or the
        # hangup handler above would be pushed as the bare label "callctl-attempt-end"
        variables = {name: value.replace(",", "\\,") for name, value in variables.items()}
        try:
            await self._repo.attach_channel(live.attempt_id, live.attempt_id)
            await self._ami.originate(
                f"PJSIP/{live.phone}@{settings.trunk}",
                live.attempt_id,
                action_id=live.attempt_id,
                context="callctl-dialer",
                exten="s",
                priority=1,
                timeout_s=settings.ring_timeout_seconds,
                caller_id=settings.caller_id,
                variables=variables,
            )
        except AmiError as error:
            # Not re-sent: a lost answer may still mean a live call; the grace timer decides.
            log.warning(
                "dialer.originate_failed",
                campaign=run.name,
                attempt_id=live.attempt_id,
                error=str(error),
            )
            self._tasks.spawn(self._finish_if_no_channel(live.attempt_id, None))

    # -- ARI: agents answering, customers answering ---------------------------------------

    def on_agent_stasis(self, event: Mapping[str, Any]) -> None:
        channel = event["channel"]
        found = self._agent_channels.get(channel["id"])
        if found is None:  # an agent leg we did not originate (or from before a restart)
            self._tasks.spawn(self._hangup_quietly(channel["id"]))
            return
        self._tasks.spawn(self._seat_agent(*found, channel["id"]))

    async def _seat_agent(self, campaign: str, agent_id: str, channel_id: str) -> None:
        leg = self.campaigns[campaign].agents[agent_id]
        bridge_id = f"agent-bridge-{channel_id}"
        try:
            await self._ari.request("POST", f"/bridges/{bridge_id}", {"type": "mixing"})
            await self._ari.request(
                "POST", f"/bridges/{bridge_id}/addChannel", {"channel": channel_id}
            )
        except AriError as error:
            self._agent_gone(channel_id, f"cannot seat agent: {error}")
            return
        leg.bridge_id = bridge_id
        self._agent_ready(self.campaigns[campaign], leg)
        log.info("dialer.agent_ready", campaign=campaign, agent_id=agent_id)

    def _agent_ready(self, run: CampaignRun, leg: AgentLeg) -> None:
        leg.state, leg.since, leg.customer = "ready", self._clock(), None
        while run.waiting:
            attempt_id = run.waiting.popleft()
            live = run.attempts.get(attempt_id)
            if live is not None and not live.abandoned and live.agent_id is None:
                self._tasks.spawn(self._connect(run, live, leg))
                return

    def on_customer_stasis(self, event: Mapping[str, Any]) -> None:
        channel_id = event["channel"]["id"]
        campaign = self._attempt_campaign.get(channel_id)
        run = self.campaigns.get(campaign or "")
        live = run.attempts.get(channel_id) if run else None
        if run is None or live is None:
            log.warning("dialer.unknown_customer", channel=channel_id)
            self._tasks.spawn(self._safe_harbor_channel(channel_id))
            return
        live.answered_at, live.needed_agent = self._clock(), True
        live.channel_name = event["channel"].get("name", "")
        self._tasks.spawn(self._put_record(live.attempt_id, ""))
        run.stats.record_attempt(connected=True, seconds=live.answered_at - live.launched_at)
        leg = self._longest_idle(run)
        if leg is not None:
            self._tasks.spawn(self._connect(run, live, leg))
        else:
            run.waiting.append(live.attempt_id)
            self._tasks.spawn(self._abandon_after_grace(run, live))

    def _longest_idle(self, run: CampaignRun) -> AgentLeg | None:
        ready = [leg for leg in run.agents.values() if leg.state == "ready"]
        return min(ready, key=lambda leg: leg.since) if ready else None

    async def _connect(self, run: CampaignRun, live: LiveAttempt, leg: AgentLeg) -> None:
        leg.state, leg.since, leg.customer = "on_call", self._clock(), live.attempt_id
        live.agent_id = leg.agent_id
        try:
            await self._ari.request(
                "POST", f"/bridges/{leg.bridge_id}/addChannel", {"channel": live.attempt_id}
            )
            await self._ari.set_variable(live.attempt_id, "CALLCTL_RESULT", "human")
        except AriError as error:
            log.warning(
                "dialer.connect_failed",
                campaign=run.name,
                attempt_id=live.attempt_id,
                error=str(error),
            )
            live.agent_id = None
            self._agent_ready(run, leg)
            return
        latency = self._clock() - (live.answered_at or self._clock())
        self._metrics.answer_to_agent(run.name, latency)
        self._tasks.spawn(self._put_record(live.attempt_id, "human"))
        run.stats.record_live_answer(self._clock(), abandoned=False)
        log.info(
            "dialer.connected",
            campaign=run.name,
            attempt_id=live.attempt_id,
            agent_id=leg.agent_id,
            answer_to_agent_ms=round(latency * 1000, 1),
        )
        if self._recorder is not None:
            await self._recorder.start(
                CallFacts(
                    call_id=live.attempt_id,
                    direction="outbound",
                    started_at=datetime.fromtimestamp(live.launched_at, UTC),
                    campaign=run.name,
                ),
                live.channel_name,
                agent_id=leg.agent_id,
                caller=run.settings.caller_id,
                callee=live.phone,
            )

    async def _put_record(self, attempt_id: str, seen: str) -> None:
        """Write an answered attempt's AstDB record ourselves: the hangup handler of a channel
        that was in Stasis runs with escalations inhibited, so its DB() write is refused
        ("Dangerous function DB write blocked") and only this record survives a crash."""
        with contextlib.suppress(AmiError):
            await self._ami.action("DBPut", Family=ASTDB_FAMILY, Key=attempt_id, Val=f",1,{seen}")

    async def _abandon_after_grace(self, run: CampaignRun, live: LiveAttempt) -> None:
        await asyncio.sleep(ABANDON_AFTER_S)
        if live.agent_id is not None or live.finished:
            return
        live.abandoned = True
        with contextlib.suppress(ValueError):
            run.waiting.remove(live.attempt_id)
        run.stats.record_live_answer(self._clock(), abandoned=True)
        log.warning("dialer.abandoned", campaign=run.name, attempt_id=live.attempt_id)
        await self._safe_harbor_channel(live.attempt_id)

    async def _safe_harbor_channel(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self._ari.set_variable(channel_id, "CALLCTL_RESULT", "abandoned")
            await self._ari.continue_in_dialplan(channel_id, "callctl-safe-harbor", "s")

    # -- AMI: the end of every call -------------------------------------------------------

    def on_ami_event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("Event")
        if kind == "Hangup":
            uid = event.get("Uniqueid", "")
            if uid in self._attempt_campaign:
                cause = _int(event.get("Cause"))
                self._tasks.spawn(self._finish(uid, cause))
            elif uid in self._agent_channels:
                self._agent_gone(uid, f"agent leg hung up (cause {event.get('Cause')})")
        elif kind == "UserEvent" and event.get("UserEvent") == "CallctlAmd":
            campaign = self._attempt_campaign.get(event.get("Attempt", ""))
            run = self.campaigns.get(campaign or "")
            live = run.attempts.get(event.get("Attempt", "")) if run else None
            if live is not None:
                live.machine, live.answered_at = True, self._clock()
        elif kind == "OriginateResponse" and event.get("Response") == "Failure":
            action_id = event.get("ActionID", "")
            if action_id in self._attempt_campaign:
                self._tasks.spawn(self._finish_if_no_channel(action_id, _int(event.get("Reason"))))
            elif action_id in self._agent_channels:
                self._agent_gone(action_id, "agent did not answer")

    async def _finish_if_no_channel(self, attempt_id: str, reason: int | None) -> None:
        """An originate failed: if no Hangup follows (no channel was made), close it here."""
        await asyncio.sleep(ORIGINATE_FAILURE_GRACE_S)
        if attempt_id not in self._model.channels:
            await self._finish(attempt_id, None)

    async def _finish(self, attempt_id: str, cause: int | None) -> None:
        campaign = self._attempt_campaign.pop(attempt_id, None)
        run = self.campaigns.get(campaign or "")
        live = run.attempts.pop(attempt_id, None) if run else None
        if run is None or live is None:
            return
        live.finished = True
        with contextlib.suppress(ValueError):
            run.waiting.remove(attempt_id)
        now = self._clock()
        if live.adopted:
            result, recorded_cause = await self._astdb_result(attempt_id)
            cause = cause if cause is not None else recorded_cause
        else:
            result = classify_hangup(
                cause,
                answered=live.answered_at is not None,
                machine=live.machine,
                agent_connected=live.agent_id is not None,
            )
        if not live.needed_agent:  # connected attempts were recorded when they answered
            run.stats.record_attempt(connected=False, seconds=now - live.launched_at)
        talk = None
        leg = run.agents.get(live.agent_id or "")
        if leg is not None and leg.customer == attempt_id:
            talk = now - leg.since
            run.stats.record_talk(talk)
            leg.state, leg.since, leg.customer = "wrapup", now, None
            self._tasks.spawn(self._end_wrapup(run, leg))
        answered = live.answered_at if live.needed_agent else None
        timing = AttemptTiming(
            answered_at=datetime.fromtimestamp(answered, UTC) if answered is not None else None,
            talk_seconds=talk,
        )
        await self._record(run, attempt_id, result, cause, timing)

    async def _record(
        self,
        run: CampaignRun,
        attempt_id: str,
        result: Result,
        cause: int | None,
        timing: AttemptTiming | None = None,
    ) -> None:
        try:
            retry = await self._repo.record_result(
                attempt_id, result, self._now_dt(), cause, timing
            )
        except DialerStoreError as error:
            log.error(
                "dialer.record_failed", campaign=run.name, attempt_id=attempt_id, error=str(error)
            )
            return
        self._metrics.dialer_result(run.name, result.value)
        log.info(
            "dialer.attempt_ended",
            campaign=run.name,
            attempt_id=attempt_id,
            result=result.value,
            cause=cause,
            retry_at=retry.isoformat() if retry else None,
        )
        with contextlib.suppress(AmiError):
            await self._ami.action("DBDel", Family=ASTDB_FAMILY, Key=attempt_id)

    async def _end_wrapup(self, run: CampaignRun, leg: AgentLeg) -> None:
        wrapup = run.settings.agent_wrapup_seconds
        await asyncio.sleep(wrapup)
        if leg.state == "wrapup":
            run.stats.record_wrap(wrapup)
            self._agent_ready(run, leg)

    def _agent_gone(self, channel_id: str, why: str) -> None:
        found = self._agent_channels.pop(channel_id, None)
        if found is None:
            return
        campaign, agent_id = found
        run = self.campaigns[campaign]
        leg = run.agents[agent_id]
        customer = leg.customer
        leg.state, leg.last_failure, leg.customer = "gone", self._clock(), None
        log.info("dialer.agent_gone", campaign=campaign, agent_id=agent_id, reason=why)
        if leg.bridge_id:
            self._tasks.spawn(self._destroy_bridge(leg.bridge_id))
        if customer is not None:  # the agent hung up on the customer: end the customer leg too
            self._tasks.spawn(self._hangup_quietly(customer))

    async def _destroy_bridge(self, bridge_id: str) -> None:
        with contextlib.suppress(AriError):
            await self._ari.request("DELETE", f"/bridges/{bridge_id}")

    async def _hangup_quietly(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self._ari.hangup(channel_id)

    # -- restart and reconnect ------------------------------------------------------------

    async def reconcile(self) -> None:
        """Settle this worker's open attempts against Asterisk (after every AMI resync)."""
        try:
            for uniqueid in list(self._model.channels):
                if uniqueid.startswith(self._agent_channel_prefix) and (
                    uniqueid not in self._agent_channels
                ):
                    log.info("dialer.stale_agent_leg", channel=uniqueid)
                    await self._hangup_quietly(uniqueid)
            for attempt in await self._repo.open_attempts():
                if attempt.worker != self._worker or attempt.attempt_id in self._attempt_campaign:
                    continue
                await self._settle(
                    attempt.attempt_id,
                    attempt.campaign,
                    attempt.phone,
                    attempt.started_at.timestamp(),
                )
        finally:
            self._reconciled.set()

    async def _settle(self, attempt_id: str, campaign: str, phone: str, started: float) -> None:
        run = self.campaigns.get(campaign) or await self._load(campaign)
        if attempt_id in self._model.channels:
            live = LiveAttempt(attempt_id, phone, launched_at=started, adopted=True)
            if self._model.channels[attempt_id].state == "Up":
                live.answered_at = started
            run.attempts[attempt_id] = live
            self._attempt_campaign[attempt_id] = campaign
            log.info("dialer.attempt_adopted", campaign=campaign, attempt_id=attempt_id)
            return
        result, cause = await self._astdb_result(attempt_id)
        log.info(
            "dialer.attempt_settled",
            campaign=campaign,
            attempt_id=attempt_id,
            result=result.value,
            cause=cause,
        )
        await self._record(run, attempt_id, result, cause)

    async def _astdb_result(self, attempt_id: str) -> tuple[Result, int | None]:
        """An attempt's result and cause from the record its hangup handler left in AstDB."""
        cause, answered, seen = None, False, ""
        with contextlib.suppress(AmiError):
            answer = await self._ami.action(
                "DBGet", as_list=None, Family=ASTDB_FAMILY, Key=attempt_id
            )
            record = _dbget_value(answer)
            if record is not None:
                raw_cause, raw_answered, seen = ([*record.split(","), "", ""])[:3]
                cause, answered = _int(raw_cause), raw_answered == "1"
        if seen == "" and cause is None:
            return Result.FAILED, None  # nothing is known of it: retry later under the policy
        result = classify_hangup(
            cause,
            answered=answered,
            machine=seen == "machine",
            agent_connected=seen == "human",
        )
        return result, cause

    # -- gauges ---------------------------------------------------------------------------

    async def gauges(self) -> list[DialerGauges]:
        result = []
        for run in self.campaigns.values():
            result.append(
                DialerGauges(
                    campaign=run.name,
                    lines_active=len(run.attempts),
                    dial_level=run.last_decision.dial_level if run.last_decision else 0.0,
                    occupancy_ratio=run.talk_s / run.logged_in_s if run.logged_in_s else 0.0,
                    abandon_ratio_by_window=_windows(
                        await self._repo.abandon_ratios(run.name, self._now_dt())
                    ),
                    leads_by_state=await self._repo.lead_counts(run.name),
                )
            )
        return result


def _windows(ratios: Mapping[str, float]) -> dict[AbandonWindow, float]:
    return {window: ratios.get(window, 0.0) for window in ABANDON_WINDOWS}


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _dbget_value(answer: Any) -> str | None:
    """DBGet answers with a DBGetResponse event carrying ``Val`` (an event list in 22)."""
    for message in answer if isinstance(answer, list) else [answer]:
        if "Val" in message:
            return str(message["Val"])
    return None
