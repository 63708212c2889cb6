"""The campaign runner: carries out the campaign machine's commands on Asterisk and the store.

The lifecycle itself (who gets which call, when an answer is abandoned, what a hangup came to)
is :class:`controller.dialer.campaign.CampaignMachine`, the same code the simulator runs. This
module feeds it what Asterisk and the store say and executes what it asks for. How an outbound
call flows (dialplan in ``dialplans/dialer.conf``):

- **Agents** sit on a nailed-up connection: the runner originates a call to each of a running
  campaign's agents into our Stasis app (``agent,<campaign>,<agent>``) and parks the answered
  leg alone in a mixing bridge of its own. Connecting a customer is then one ``addChannel`` to
  that bridge: milliseconds, no ringing.
- **Customers**: each tick the machine asks pacing how many calls to launch; the runner claims
  that many leads in one store transaction (each attempt row is committed as ``dialing`` before
  its originate goes out) and sends one AMI Originate per lead, with the attempt id as the
  channel's uniqueid and as the ActionID, never re-sent. An answered call runs AMD if enabled,
  then enters Stasis (``dialer,<campaign>,<attempt>``); if no agent takes it within 2 s it is
  sent to the safe-harbor message and counts as abandoned.
- **Results** come from the customer channel's Hangup cause plus what the machine saw.
- **Crash safety**: every customer leg leaves a record in AstDB (``dialer/ledger.py``). After a
  restart (or an AMI reconnect) each open attempt of this worker is either still a live channel
  (adopted and followed to its end), or has a record (settled from it), or is unknown: no
  channel and no record means the controller died between the claim's commit and the
  originate, so nothing was dialed and the lead gets its attempt back (``not_dialed``). Agent
  legs of this worker still seated in their bridges are adopted too, with the customer they
  are talking to or the wrap-up of their last call (from the store): a restart cuts no
  conversation and rings no agent's phone again (a bridge is named ``<agent>:<campaign>`` for
  this). Other agent legs left over from before the restart are hung up and their bridges
  destroyed (bridges are swept again every minute). A graceful stop lets go of the idle
  agents' lines and bridges at once.
- **Several workers** on one store: each open attempt carries its worker's lease, and so does
  the worker's row in ``dialer_workers`` with the agents it seats. A worker whose leases ran out
  is gone: a survivor settles its open attempts ``lost`` and the survivors seat its agents
  (``dialer/workers.py``) until it renews again.
- **Recording**: when a customer is connected to an agent, the call is handed to the recorder,
  which records it if the campaign's recording policy says so (MixMonitor on the customer leg).
- **Fault injection**: ``controller.faults.crash_point`` marks the four places where a crash
  test kills the controller (after the claim commit, the originate, the answer, the bridge).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiohttp

from controller.asterisk.ami import AmiError
from controller.asterisk.ari import AriError
from controller.asterisk.events import (
    AmiEvent,
    CallctlAmd,
    CallctlPickedUp,
    DtmfEnd,
    OriginateResponse,
    PlaybackFinished,
    StasisStart,
)
from controller.asterisk.events import Hangup as AmiHangup
from controller.dialer.campaign import (
    AGENT_BRIDGE_PREFIX,
    AgentKeyPressed,
    AgentLegAdopted,
    AgentLegGone,
    AgentLegUp,
    AgentsAssigned,
    AgentSeated,
    AmdMachine,
    AttemptAdopted,
    Bridged,
    BridgeFailed,
    CallAgent,
    CampaignMachine,
    Claim,
    Claimed,
    ClaimedLead,
    Command,
    Connect,
    CustomerAnswered,
    DestroyBridge,
    Event,
    GraceOver,
    HangUp,
    Hangup,
    KeyTone,
    LastCall,
    LegState,
    MachineSettings,
    NoteAnswered,
    NoteConnected,
    Originate,
    OriginateRefused,
    PickedUp,
    PlayKeyTone,
    PlaySafeHarbor,
    RecordDisposition,
    RecordResult,
    SeatAgent,
    SettingsChanged,
    SettleIfNoChannel,
    StartGrace,
    StartWrapup,
    StateChanged,
    Tick,
    WrapupOver,
    pacing_stats,
)
from controller.dialer.ledger import ANSWERED, CONNECTED, AstDbLedger, settled_result
from controller.dialer.pacing import AnswersFromStore, PacingStats
from controller.dialer.policy import CampaignState, Result, longest_call
from controller.dialer.ports import AmiPort, AriPort, DialerStore
from controller.dialer.repository import (
    WORKER_LEASE,
    AttemptTiming,
    CampaignHead,
    ConnectedCall,
    DialerStoreError,
    FinishedAttempt,
    OpenAttempt,
    StoredSettingsInvalid,
    UnknownCampaign,
)
from controller.dialer.settings import CampaignSettings, changed_keys
from controller.dialer.workers import agents_to_cover, gone_workers
from controller.faults import crash_point
from controller.logs import get_logger
from controller.metrics.registry import Metrics
from controller.metrics.snapshot import ABANDON_WINDOWS, AbandonWindow, DialerGauges
from controller.pjsip import agent_interface, trunk_dial_string
from controller.recording.policy import CallFacts
from controller.recording.recorder import Recorder
from controller.state.model import LiveModel
from controller.store.backlog import WriteBacklog
from controller.store.base import StoreError
from controller.tasks import TaskSet

log = get_logger("dialer")

TICK_S = 0.5
# An originate the dead controller sent a moment ago may not have made its channel yet when we
# look: an unknown attempt this young is looked at once more before its lead is given back.
ORIGINATE_SETTLE_S = 5.0
TICK_ERRORS = (StoreError, DialerStoreError, AmiError, AriError)
LEASE_RENEW_S = 5.0  # several renewals fit in one WORKER_LEASE
# How often the other workers' live answers are read into a running campaign's abandon windows.
ANSWERS_READ_S = 2.0
# How often this worker's agent bridges no leg sits in any more are looked for and destroyed.
BRIDGE_SWEEP_S = 60.0
STOP_RELEASE_S = 5.0  # the most a graceful stop waits for the idle agents' lines to be let go
# What an agent hears after a key in wrap-up (Asterisk's core sounds), and how its playbacks
# are named: their ends are logged, so a tone is known to have played.
KEY_TONE_SOUNDS = {KeyTone.TAKEN: "beep", KeyTone.REFUSED: "beeperr"}
KEY_TONE_PLAYBACK = "callctl-key-tone-"
KEY_TONES_KEPT = 256


def replay_history(
    stats: PacingStats, history: Sequence[FinishedAttempt], wrapup_s: float
) -> None:
    """Feed finished attempts (oldest first) to ``stats`` as the machine fed them live."""
    for attempt in history:
        # an answered call's fate is known when it is handed over, any other's when it ends;
        # the store keeps no pick-up time, so a connect counts as answered when handed over
        known_at = attempt.answered_at or attempt.ended_at
        stats.record_attempt(
            connected=attempt.answered_at is not None,
            seconds=(known_at - attempt.started_at).total_seconds(),
        )
        if attempt.talk_seconds is not None:
            stats.record_talk(attempt.talk_seconds)
            stats.record_wrap(wrapup_s)


class DialerService:
    def __init__(
        self,
        ami: AmiPort,
        ari: AriPort,
        model: LiveModel,
        repo: DialerStore,
        metrics: Metrics,
        writes: WriteBacklog,
        worker: str,
        agents_of_queue: Callable[[str], tuple[str, ...]],
        recorder: Recorder | None = None,
        seated_agents: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ami = ami
        self._ari = ari
        self._model = model
        self._repo = repo
        self._ledger = AstDbLedger(ami)
        self._metrics = metrics
        self._writes = writes
        self._worker = worker
        self._agents_of_queue = agents_of_queue
        self._seated_agents = frozenset(seated_agents)  # empty: every agent of a campaign
        self._covering: frozenset[str] = frozenset()  # gone workers' agents seated meanwhile
        self._kept_seats: frozenset[str] = frozenset()  # agents whose legs outlived a restart
        self._first_renewal = math.inf
        self._recorder = recorder
        self._clock = clock
        self.campaigns: dict[str, CampaignMachine] = {}
        self._settings: dict[str, CampaignSettings] = {}
        # playback id -> (campaign, agent leg, tone) until its PlaybackFinished
        self._key_tones: dict[str, tuple[str, str, KeyTone]] = {}
        self._revisions: dict[str, int] = {}  # of the settings above, per campaign followed
        self._unreadable: dict[str, int] = {}  # campaign -> settings revision logged as invalid
        self._tasks = TaskSet("dialer")
        self._reconciled = asyncio.Event()
        self._settling: set[str] = set()  # unknown attempts looked at again shortly
        self._last_renewal = -math.inf
        self._answers: dict[str, AnswersFromStore] = {}  # per campaign followed
        self._last_answers_read = -math.inf
        self._last_bridge_sweep = -math.inf

    @property
    def _agent_channel_prefix(self) -> str:
        """Agent legs are named after the worker, so a restarted worker knows its leftovers."""
        return f"agent-{self._worker}-"

    def _new_agent_channel_id(self) -> str:
        return f"{self._agent_channel_prefix}{uuid.uuid4().hex[:12]}"

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
            except TICK_ERRORS as error:  # the next tick tries again; nothing was half-done
                log.warning("dialer.tick_failed", error=str(error), error_type=type(error).__name__)

    async def _tick(self) -> None:
        if self._clock() - self._last_renewal >= LEASE_RENEW_S:
            await self._keep_leases()
        read_answers = self._clock() - self._last_answers_read >= ANSWERS_READ_S
        for name, head in (await self._repo.campaign_heads()).items():
            machine = self.campaigns.get(name) or await self._load_readable(name, head)
            if machine is None:
                continue
            if head.settings_revision != self._revisions[name]:
                await self._apply_settings(machine)
            if read_answers and head.state is CampaignState.RUNNING:
                await self._count_other_workers(name)
            if machine.state is not head.state:
                log.info(
                    "campaign.state_changed",
                    campaign=machine.name,
                    state=head.state.value,
                    previous=machine.state.value,
                )
                await self._feed(machine, StateChanged(head.state))
            await self._assign_agents(machine)
            await self._feed(machine, Tick())
        if read_answers:
            self._last_answers_read = self._clock()
        if self._clock() - self._last_bridge_sweep >= BRIDGE_SWEEP_S:
            self._last_bridge_sweep = self._clock()  # if ARI fails, tried again in a minute
            await self._sweep_bridges(await self._agent_bridges())

    async def _load_readable(self, name: str, head: CampaignHead) -> CampaignMachine | None:
        """``_load``, or None for a campaign whose stored settings no longer validate: it is
        left alone (logged once per settings revision) and the other campaigns dial on."""
        try:
            return await self._load(name)
        except StoredSettingsInvalid as error:
            if self._unreadable.get(name) != head.settings_revision:
                self._unreadable[name] = head.settings_revision
                log.error("dialer.campaign_unreadable", campaign=name, error=str(error))
            return None

    async def _load(self, name: str) -> CampaignMachine:
        """Start following a campaign; its history is seeded from the store, so the 24 h and
        30 day abandon limits still count what happened before a restart (and on the other
        workers), and predictive pacing resumes at once instead of running progressive until it
        has learned again."""
        campaign = await self._repo.campaign(name)
        stats = pacing_stats(campaign.settings)
        now = self._now_dt()
        answers = AnswersFromStore(stats, now.timestamp())
        longest = timedelta(hours=max(stats.window_hours))
        answers.take(await self._repo.live_answers(name, now - longest))
        self._answers[name] = answers
        history = await self._repo.pacing_history(name, stats.sample_size)
        replay_history(stats, history, campaign.settings.agent_wrapup_seconds)
        machine = CampaignMachine(
            name,
            MachineSettings.of(campaign.settings),
            stats,
            self._new_agent_channel_id,
            state=CampaignState(campaign.state),
        )
        self.campaigns[name] = machine
        self._settings[name] = campaign.settings
        self._revisions[name] = campaign.settings_revision
        self._declare_series(name, campaign.settings)
        return machine

    async def _apply_settings(self, machine: CampaignMachine) -> None:
        """Follow settings updated in the store (``callctl campaign update``): calls placed
        from now on go out with them and pacing decides by them; calls up keep theirs."""
        name = machine.name
        campaign = await self._repo.campaign(name)
        changed = changed_keys(self._settings[name], campaign.settings)
        self._settings[name] = campaign.settings
        self._revisions[name] = campaign.settings_revision
        log.info(
            "campaign.settings_changed",
            campaign=name,
            revision=campaign.settings_revision,
            changed=list(changed),
        )
        self._declare_series(name, campaign.settings)
        await self._feed(machine, SettingsChanged(MachineSettings.of(campaign.settings)))

    def _declare_series(self, name: str, settings: CampaignSettings) -> None:
        self._metrics.declare_campaign(
            name, (disposition.name for disposition in settings.dispositions.values()))

    async def _count_other_workers(self, name: str) -> None:
        """Count the other workers' live answers of the campaign since the last read into its
        abandon windows: the abandon rate the regulators judge is the campaign's."""
        answers = self._answers[name]
        taken = answers.take(await self._repo.live_answers(
            name, datetime.fromtimestamp(answers.since, UTC), other_than=self._worker))
        if taken:
            log.debug("dialer.other_workers_answers", campaign=name, answers=taken)

    async def _assign_agents(self, machine: CampaignMachine) -> None:
        agents = self._campaign_agents(machine.name)
        if agents != machine.agent_ids:
            await self._feed(machine, AgentsAssigned(agents))

    def _campaign_agents(self, name: str) -> tuple[str, ...]:
        """The campaign's agents this worker seats: those ``dialer.agents`` names (the others
        are another worker's) and those of gone workers it covers."""
        group = self._settings[name].agents
        agents = group.agent_ids or self._agents_of_queue(group.queue or "")
        if not self._seated_agents:
            return agents
        return tuple(
            agent for agent in agents if agent in self._seated_agents or agent in self._covering
        )

    # -- feeding the machine, carrying out its commands -----------------------------------

    async def _feed(self, machine: CampaignMachine, event: Event) -> None:
        """Hand ``event`` to the machine and carry out what it asks; a claim is awaited (it is
        the tick's store transaction), everything else runs in tasks and timers."""
        for command in machine.handle(event, self._clock()):
            if isinstance(command, Claim):
                await self._claim(machine, command)
            else:
                self._carry_out(machine, command)

    def _feed_soon(self, machine: CampaignMachine, event: Event) -> None:
        """Feed from a synchronous callback (AMI/ARI dispatch, a timer)."""
        self._tasks.spawn(self._feed(machine, event))

    def _after(self, seconds: float, machine: CampaignMachine, event: Event) -> None:
        asyncio.get_running_loop().call_later(seconds, self._feed_soon, machine, event)

    def _carry_out(self, machine: CampaignMachine, command: Command) -> None:
        match command:
            case Originate():
                self._tasks.spawn(self._originate(machine, command))
            case CallAgent():
                self._tasks.spawn(self._call_agent(machine, command))
            case SeatAgent():
                self._tasks.spawn(self._seat_agent(machine, command))
            case Connect():
                self._tasks.spawn(self._connect(machine, command))
            case PlaySafeHarbor(attempt_id):
                self._tasks.spawn(self._safe_harbor(machine, attempt_id))
            case HangUp(channel_id):
                self._tasks.spawn(self._hang_up(channel_id))
            case DestroyBridge(bridge_id):
                self._tasks.spawn(self._destroy_bridge(bridge_id))
            case StartGrace(attempt_id, seconds):
                self._after(seconds, machine, GraceOver(attempt_id))
            case StartWrapup(agent_id, attempt_id, seconds):
                self._after(seconds, machine, WrapupOver(agent_id, attempt_id))
            case NoteAnswered(attempt_id):
                self._tasks.spawn(self._note_answered(attempt_id))
            case NoteConnected():
                self._note_connected(machine, command)
            case RecordResult():
                self._tasks.spawn(self._record(machine, command))
            case RecordDisposition():
                self._tasks.spawn(self._record_disposition(machine.name, command))
            case PlayKeyTone(channel_id, tone):
                self._tasks.spawn(self._play_key_tone(machine.name, channel_id, tone))
            case SettleIfNoChannel(attempt_id, seconds):
                asyncio.get_running_loop().call_later(
                    seconds, self._settle_if_no_channel, machine, attempt_id
                )
            case Claim():  # only a tick claims; _feed awaits it
                raise AssertionError("a claim outside a tick")

    async def _claim(self, machine: CampaignMachine, command: Claim) -> None:
        leads: tuple[ClaimedLead, ...] = ()
        try:
            claimed = await self._repo.claim(
                machine.name, command.count, self._worker, self._now_dt()
            )
            leads = tuple(ClaimedLead(a.attempt_id, a.phone) for a in claimed)
        finally:  # also on a store error: the machine must know nothing is pending
            await self._feed(machine, Claimed(leads))
        if leads:
            crash_point("after_claim_commit", attempts=[lead.attempt_id for lead in leads])
            decision = command.decision
            log.info(
                "dialer.launching",
                campaign=machine.name,
                calls=len(leads),
                reason=decision.reason,
                dial_level=round(decision.dial_level, 2),
            )

    async def _originate(self, machine: CampaignMachine, command: Originate) -> None:
        settings = self._settings[machine.name]
        attempt_id = command.attempt_id
        variables = {
            "CALLCTL_CAMPAIGN": machine.name,
            "CALLCTL_ATTEMPT": attempt_id,
            "CALLCTL_AMD": "1" if settings.amd.enabled else "0",
            "CALLCTL_AMD_ARGS": settings.amd.dialplan_args(),
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
            await self._repo.attach_channel(attempt_id, attempt_id)
            await self._ami.originate(
                trunk_dial_string(command.phone, settings.trunk),
                attempt_id,
                action_id=attempt_id,
                context="callctl-dialer",
                exten="s",
                priority=1,
                timeout_s=settings.ring_timeout_seconds,
                caller_id=settings.caller_id,
                variables=variables,
            )
        except (AmiError, StoreError, DialerStoreError) as error:
            # Not re-sent: a lost answer may still mean a live call; the machine waits for it.
            log.warning(
                "dialer.originate_failed",
                campaign=machine.name,
                attempt_id=attempt_id,
                error=str(error),
            )
            await self._feed(machine, OriginateRefused(attempt_id, str(error)))
            return
        crash_point("after_originate_sent", attempt_id=attempt_id)

    def _settle_if_no_channel(self, machine: CampaignMachine, attempt_id: str) -> None:
        if attempt_id not in self._model.channels:
            self._feed_soon(machine, Hangup(attempt_id, None))

    async def _call_agent(self, machine: CampaignMachine, command: CallAgent) -> None:
        try:
            await self._ami.originate(
                agent_interface(command.agent_id),
                command.channel_id,
                action_id=command.channel_id,
                application="Stasis",
                data=f"{self._ari.app},agent,{machine.name},{command.agent_id}",
                timeout_s=30,
                caller_id=f'"{machine.name}" <{machine.name}>',
            )
        except AmiError as error:
            await self._agent_gone(machine, command.channel_id, f"originate refused: {error}")
            return
        log.info("dialer.agent_calling", campaign=machine.name, agent_id=command.agent_id)

    async def _seat_agent(self, machine: CampaignMachine, command: SeatAgent) -> None:
        try:
            await self._ari.request(
                "POST", f"/bridges/{command.bridge_id}",
                {"type": "mixing", "name": seat_name(command.agent_id, machine.name)},
            )
            await self._ari.request(
                "POST", f"/bridges/{command.bridge_id}/addChannel", {"channel": command.channel_id}
            )
        except AriError as error:
            await self._agent_gone(machine, command.channel_id, f"cannot seat agent: {error}")
            return
        await self._feed(machine, AgentSeated(command.channel_id, command.bridge_id))
        log.info("dialer.agent_ready", campaign=machine.name, agent_id=command.agent_id)

    async def _agent_gone(self, machine: CampaignMachine, channel_id: str, why: str) -> None:
        leg = machine.agent_on(channel_id)
        if leg is not None:
            log.info("dialer.agent_gone", campaign=machine.name, agent_id=leg, reason=why)
        await self._feed(machine, AgentLegGone(channel_id, why))

    async def _connect(self, machine: CampaignMachine, command: Connect) -> None:
        try:
            await self._ari.request(
                "POST", f"/bridges/{command.bridge_id}/addChannel",
                {"channel": command.attempt_id},
            )
            await self._ari.set_variable(command.attempt_id, "CALLCTL_RESULT", "human")
        except AriError as error:
            log.warning(
                "dialer.connect_failed",
                campaign=machine.name,
                attempt_id=command.attempt_id,
                agent_id=command.agent_id,
                error=str(error),
            )
            await self._feed(machine, BridgeFailed(command.attempt_id, str(error)))
            return
        await self._feed(machine, Bridged(command.attempt_id))

    def _note_connected(self, machine: CampaignMachine, command: NoteConnected) -> None:
        self._metrics.answer_to_agent(machine.name, command.answer_to_agent_s)
        log.info(
            "dialer.connected",
            campaign=machine.name,
            attempt_id=command.attempt_id,
            agent_id=command.agent_id,
            answer_to_agent_ms=round(command.answer_to_agent_s * 1000, 1),
        )
        self._tasks.spawn(self._write_connected(machine, command))
        self._tasks.spawn(self._writes.write(
            "dialer connect",
            partial(self._repo.record_connected, command.attempt_id, command.agent_id,
                    self._now_dt()),
            campaign=machine.name, attempt_id=command.attempt_id, agent_id=command.agent_id,
        ))

    async def _write_connected(self, machine: CampaignMachine, command: NoteConnected) -> None:
        await self._put_ledger(command.attempt_id, connected=True)
        crash_point("after_bridge", attempt_id=command.attempt_id)
        if self._recorder is None:
            return
        await self._recorder.start(
            CallFacts(
                call_id=command.attempt_id,
                direction="outbound",
                started_at=datetime.fromtimestamp(command.launched_at, UTC),
                campaign=machine.name,
            ),
            command.channel_name,
            agent_id=command.agent_id,
            caller=self._settings[machine.name].caller_id,
            callee=command.phone,
        )

    async def _note_answered(self, attempt_id: str) -> None:
        await self._put_ledger(attempt_id, connected=False)
        crash_point("after_customer_answered", attempt_id=attempt_id)

    async def _put_ledger(self, attempt_id: str, *, connected: bool) -> None:
        """Write an answered attempt's AstDB record ourselves: the hangup handler of a channel
        that was in Stasis runs with escalations inhibited, so its DB() write is refused
        ("Dangerous function DB write blocked") and only this record survives a crash."""
        try:
            await self._ledger.put(attempt_id, CONNECTED if connected else ANSWERED)
        except AmiError as error:  # the call goes on; only a crash now would lose what it was
            log.warning("dialer.ledger_write_failed", attempt_id=attempt_id, error=str(error))

    async def _safe_harbor(self, machine: CampaignMachine | None, channel_id: str) -> None:
        if machine is not None and channel_id in machine.attempts:
            log.warning("dialer.abandoned", campaign=machine.name, attempt_id=channel_id)
        else:
            log.warning("dialer.unknown_customer", channel=channel_id)
        try:
            await self._ari.set_variable(channel_id, "CALLCTL_RESULT", "abandoned")
            await self._ari.continue_in_dialplan(channel_id, "callctl-safe-harbor", "s")
        except AriError as error:  # the customer hung up meanwhile: its Hangup ends the attempt
            log.info("dialer.safe_harbor_failed", channel=channel_id, error=str(error))

    async def _play_key_tone(self, campaign: str, channel_id: str, tone: KeyTone) -> None:
        """The tone to the agent's leg; its end (``on_playback_finished``) is logged."""
        playback_id = f"{KEY_TONE_PLAYBACK}{uuid.uuid4().hex}"
        self._key_tones[playback_id] = (campaign, channel_id, tone)
        while len(self._key_tones) > KEY_TONES_KEPT:  # ends that never came (Asterisk gone)
            del self._key_tones[next(iter(self._key_tones))]
        try:
            await self._ari.request(
                "POST", f"/channels/{channel_id}/play",
                params={"media": f"sound:{KEY_TONE_SOUNDS[tone]}", "playbackId": playback_id},
            )
        except AriError as error:  # the agent hung up meanwhile: nobody to hear it
            self._key_tones.pop(playback_id, None)
            log.info("dialer.key_tone_failed", campaign=campaign, channel=channel_id,
                     error=str(error))

    def on_playback_finished(self, event: PlaybackFinished) -> None:
        played = self._key_tones.pop(event.playback_id, None)
        if played is None:
            return
        campaign, channel_id, tone = played
        # "failed": Asterisk had no such sound, or the leg went away before it played
        emit = log.info if event.state == "done" else log.warning
        emit("dialer.key_tone", campaign=campaign, channel=channel_id, tone=tone.value,
             state=event.state)

    async def _hang_up(self, channel_id: str) -> None:
        try:
            await self._ari.hangup(channel_id)
        except AriError as error:  # already gone: what we wanted
            log.info("dialer.hangup_failed", channel=channel_id, error=str(error))

    async def _destroy_bridge(self, bridge_id: str) -> None:
        try:
            await self._ari.request("DELETE", f"/bridges/{bridge_id}")
        except AriError as error:
            log.info("dialer.bridge_destroy_failed", bridge=bridge_id, error=str(error))

    # -- results ---------------------------------------------------------------------------

    async def _record(self, machine: CampaignMachine, command: RecordResult) -> None:
        result, cause = command.result, command.cause
        if command.from_ledger:  # adopted: what happened before the restart is in AstDB
            try:
                record = await self._ledger.read(command.attempt_id)
            except AmiError as error:
                log.warning(
                    "dialer.ledger_read_failed", attempt_id=command.attempt_id, error=str(error)
                )
                record = None
            result = settled_result(record, cause, channel_seen=True)
        timing = AttemptTiming(
            answered_at=_utc(command.answered_at), talk_seconds=command.talk_seconds
        )
        await self._store_result(machine.name, command.attempt_id, result, cause, timing)

    async def _store_result(
        self,
        campaign: str,
        attempt_id: str,
        result: Result,
        cause: int | None,
        timing: AttemptTiming | None = None,
    ) -> None:
        """Record how an attempt ended: now, or once the store answers again (the write waits
        in the backlog, and the attempt's AstDB record stays until it has landed)."""
        await self._writes.write(
            "dialer result",
            partial(self._write_result, campaign, attempt_id, result, cause, timing),
            campaign=campaign,
            attempt_id=attempt_id,
        )

    async def _write_result(
        self,
        campaign: str,
        attempt_id: str,
        result: Result,
        cause: int | None,
        timing: AttemptTiming | None,
    ) -> None:
        try:
            if result is Result.NOT_DIALED:
                await self._repo.release_attempt(attempt_id, self._now_dt())
                retry: datetime | None = self._now_dt()
            else:
                retry = await self._repo.record_result(
                    attempt_id, result, self._now_dt(), cause, timing
                )
        except DialerStoreError as error:
            # settled already: by a survivor after our lease ran out, or by a reconcile from
            # the AstDB record while this write waited for the store
            log.error(
                "dialer.record_failed", campaign=campaign, attempt_id=attempt_id, error=str(error)
            )
            return
        self._metrics.dialer_result(campaign, result.value)
        log.info(
            "dialer.attempt_ended",
            campaign=campaign,
            attempt_id=attempt_id,
            result=result.value,
            cause=cause,
            retry_at=retry.isoformat() if retry else None,
        )
        try:
            await self._ledger.delete(attempt_id)
        except AmiError as error:  # a stale record is only read for an attempt still open
            log.info("dialer.ledger_delete_failed", attempt_id=attempt_id, error=str(error))

    async def _record_disposition(self, campaign: str, command: RecordDisposition) -> None:
        """Store an agent's disposition now, or once the store answers again."""
        await self._writes.write(
            "dialer disposition",
            partial(self._write_disposition, campaign, command),
            campaign=campaign,
            attempt_id=command.attempt_id,
        )

    async def _write_disposition(self, campaign: str, command: RecordDisposition) -> None:
        disposition = command.disposition
        try:
            lead = await self._repo.record_disposition(
                command.attempt_id, disposition, command.agent_id, self._now_dt()
            )
        except DialerStoreError as error:  # the attempt is not in the store: nothing to mark
            log.error(
                "dialer.disposition_failed", campaign=campaign, attempt_id=command.attempt_id,
                error=str(error),
            )
            return
        self._metrics.dialer_disposition(campaign, disposition.name)
        log.info(
            "dialer.disposition",
            campaign=campaign,
            attempt_id=command.attempt_id,
            agent_id=command.agent_id,
            key=command.key,
            disposition=disposition.name,
            lead=disposition.lead,
            lead_state=lead.state,
            retry_at=lead.retry_at.isoformat() if lead.retry_at else None,
        )

    # -- AMI and ARI events ------------------------------------------------------------------

    def _owner(self, channel_id: str) -> CampaignMachine | None:
        for machine in self.campaigns.values():
            if machine.owns(channel_id):
                return machine
        return None

    def on_agent_stasis(self, event: StasisStart) -> None:
        channel_id = event.channel.id
        machine = self._owner(channel_id)
        if machine is None:  # an agent leg we did not originate (or from before a restart)
            self._tasks.spawn(self._hang_up(channel_id))
            return
        self._feed_soon(machine, AgentLegUp(channel_id))

    def on_customer_stasis(self, event: StasisStart) -> None:
        channel = event.channel
        machine = self._owner(channel.id)
        if machine is None:  # nobody here will take it
            self._tasks.spawn(self._safe_harbor(None, channel.id))
            return
        self._feed_soon(machine, CustomerAnswered(channel.id, channel.name))

    def on_ami_event(self, event: AmiEvent) -> None:
        match event:
            case AmiHangup(uniqueid=uid, cause=cause):
                machine = self._owner(uid)
                if machine is not None:
                    self._feed_soon(machine, Hangup(uid, cause))
            case CallctlPickedUp(attempt=attempt_id):
                machine = self._owner(attempt_id)
                if machine is not None:
                    self._feed_soon(machine, PickedUp(attempt_id))
            case CallctlAmd(attempt=attempt_id):
                machine = self._owner(attempt_id)
                if machine is not None:
                    self._feed_soon(machine, AmdMachine(attempt_id))
            case DtmfEnd(uniqueid=uid, digit=key, received=True):
                machine = self._owner(uid)
                if machine is not None and machine.agent_on(uid) is not None:
                    self._feed_soon(machine, AgentKeyPressed(uid, key))
            case OriginateResponse(action_id=action_id) if event.failed:
                machine = self._owner(action_id)
                if machine is None:
                    return
                if action_id in machine.attempts:
                    self._feed_soon(machine, OriginateRefused(action_id, "originate failed"))
                else:
                    self._tasks.spawn(self._agent_gone(machine, action_id, "agent did not answer"))

    # -- several workers: leases ---------------------------------------------------------

    async def _keep_leases(self) -> None:
        """Renew this worker's leases, and settle the open attempts of workers whose leases ran
        out: they are gone, and only the store says what they had open. Their calls may still
        be up on their node, which this worker cannot see, so each is recorded ``lost`` and its
        lead waits until that call has surely ended (``policy.longest_call``): never lost, never
        dialed twice at once."""
        now = self._now_dt()
        await self._renew(now)
        await self._follow_cover(now)
        for attempt in await self._repo.lapsed_attempts(self._worker, now):
            try:
                retry = await self._repo.record_result(attempt.attempt_id, Result.LOST, now)
            except DialerStoreError:  # another survivor, or its worker back, settled it first
                continue
            self._metrics.dialer_result(attempt.campaign, Result.LOST.value)
            log.warning(
                "dialer.attempt_lost",
                campaign=attempt.campaign,
                attempt_id=attempt.attempt_id,
                worker=attempt.worker,
                retry_at=retry.isoformat() if retry else None,
            )

    async def _renew(self, now: datetime) -> None:
        """Renew this worker's leases: on its open attempts, and on its row with the agents it
        seats."""
        await self._repo.renew_leases(self._worker, self._seated_agents, now)
        self._last_renewal = self._clock()
        self._first_renewal = min(self._first_renewal, self._last_renewal)

    async def _follow_cover(self, now: datetime) -> None:
        """Seat the agents of gone workers this worker covers (``dialer.workers``). For a lease
        after its start it takes only those whose lines it kept from before a restart: at a
        cold start of the site every other row is out of date, and the other workers, starting
        too, have that long to renew theirs before this one calls their agents."""
        leases = await self._repo.worker_leases()
        covering = agents_to_cover(self._worker, leases, now)
        if self._clock() - self._first_renewal < WORKER_LEASE.total_seconds():
            covering &= self._kept_seats
        if covering != self._covering:
            log.info(
                "dialer.agents_covered",
                agents=sorted(covering),
                previous=sorted(self._covering),
                workers_gone=sorted(
                    lease.worker for lease in gone_workers(self._worker, leases, now)),
            )
            self._covering = covering
            self._metrics.dialer_agents_covered(len(covering))

    # -- restart and reconnect ------------------------------------------------------------

    async def reconcile(self) -> None:
        """Settle this worker's open attempts against Asterisk (after every AMI resync)."""
        try:
            # ours again before a survivor takes them for a dead worker's
            await self._renew(self._now_dt())
            for attempt in await self._repo.open_attempts():
                if (
                    attempt.worker == self._worker
                    and self._owner(attempt.attempt_id) is None
                    and attempt.attempt_id not in self._settling
                ):
                    await self._settle(attempt)
            bridges = await self._agent_bridges()
            self._kept_seats = frozenset(
                seat.agent_id for seat in map(seated_leg, bridges)
                if seat is not None and seat.agent_id is not None
            )
            # whose agents this worker covers, before its adopted legs are matched against them
            await self._follow_cover(self._now_dt())
            await self._adopt_agent_legs(bridges)  # after the attempts: a leg's customer is one
            for uniqueid in list(self._model.channels):
                ours = uniqueid.startswith(self._agent_channel_prefix)
                if ours and self._owner(uniqueid) is None:
                    log.info("dialer.stale_agent_leg", channel=uniqueid)
                    await self._hang_up(uniqueid)
            await self._sweep_bridges(bridges)
        except TICK_ERRORS as error:  # the next resync tries again; open attempts stay open
            log.warning("dialer.reconcile_failed", error=str(error))
        finally:
            self._reconciled.set()

    async def _agent_bridges(self) -> list[dict[str, Any]]:
        """This worker's agent bridges, as ``GET /bridges`` lists them."""
        bridges = await self._ari.request("GET", "/bridges")
        if not isinstance(bridges, list):
            log.warning("dialer.bridges_unreadable", answer=str(bridges)[:200])
            return []
        ours = AGENT_BRIDGE_PREFIX + self._agent_channel_prefix
        return [
            bridge for bridge in bridges
            if isinstance(bridge, dict) and str(bridge.get("id", "")).startswith(ours)
        ]

    async def _adopt_agent_legs(self, bridges: Sequence[Mapping[str, Any]]) -> None:
        """Give each agent leg of this worker still seated in its bridge to its campaign's
        machine (``AgentLegAdopted``), with the customer in the bridge if there is one. A bridge
        whose seat is not known (no such campaign) has its customers hung up: their agent's leg
        is hung up next, as a leftover."""
        recent: dict[str, list[ConnectedCall]] = {}  # per campaign, read once
        for bridge in bridges:
            seat = seated_leg(bridge)
            if seat is None or self._owner(seat.channel_id) is not None:
                continue
            machine = None
            if seat.campaign is not None:
                try:
                    machine = self.campaigns.get(seat.campaign) or await self._load(seat.campaign)
                except UnknownCampaign:
                    pass
            if machine is None or seat.agent_id is None:
                log.info("dialer.agent_seat_unknown", bridge=seat.bridge_id, name=seat.name)
                for channel_id in seat.others:
                    await self._hang_up(channel_id)
                continue
            customer, last_call = None, None
            if seat.others:
                customer = seat.others[0]
            else:
                if machine.name not in recent:
                    recent[machine.name] = await self._calls_a_wrapup_may_follow(machine.name)
                last_call = _last_call(recent[machine.name], seat.agent_id)
            await self._feed(machine, AgentLegAdopted(
                seat.agent_id, seat.channel_id, seat.bridge_id, customer, last_call))
            leg = machine.agents.get(seat.agent_id)
            if leg is not None and leg.channel_id == seat.channel_id:
                log.info("dialer.agent_leg_adopted", campaign=machine.name,
                         agent_id=seat.agent_id, channel=seat.channel_id, state=leg.state.value,
                         attempt_id=customer, wrapup_of=leg.wrapup_of)
        # now, not at the first tick: an adopted call that ends before it must find its agent
        # on the campaign (or the leg would be let go), and only the agents with no leg are
        # called
        for machine in list(self.campaigns.values()):
            await self._assign_agents(machine)

    async def _calls_a_wrapup_may_follow(self, campaign: str) -> list[ConnectedCall]:
        """The campaign's calls recent enough that an agent may be wrapping one up still."""
        settings = self._settings[campaign]
        since = self._now_dt() - longest_call(settings) - timedelta(
            seconds=settings.agent_wrapup_seconds)
        return await self._repo.connected_calls(since, campaign)

    async def _sweep_bridges(self, bridges: Sequence[Mapping[str, Any]]) -> None:
        """Destroy those of this worker's agent ``bridges`` whose leg is not ours any more:
        Asterisk keeps a bridge until it is destroyed, and a controller that stopped or died
        leaves its legs' bridges (each also keeps our ARI app registered). A bridge is named
        after its leg, so one being set up for a leg of ours right now is known as ours."""
        self._last_bridge_sweep = self._clock()
        for bridge in bridges:
            bridge_id = str(bridge["id"])
            if self._owner(bridge_id.removeprefix(AGENT_BRIDGE_PREFIX)) is None:
                log.info("dialer.stale_agent_bridge", bridge=bridge_id)
                await self._destroy_bridge(bridge_id)

    async def release_idle_agents(self) -> None:
        """At a graceful stop: hang up every agent leg no customer is on and destroy its
        bridge, so no phone keeps a line to a controller that is gone. A leg with a customer
        stays up and the conversation goes on; the next start adopts the leg (``reconcile``).
        Bounded in time: an Asterisk that does not answer must not hold the stop up (its legs
        are then a restart's leftovers, as after a crash)."""
        try:
            async with asyncio.timeout(STOP_RELEASE_S):
                for machine in self.campaigns.values():
                    for leg in list(machine.agents.values()):
                        if leg.state is LegState.GONE or leg.customer is not None:
                            continue
                        log.info("dialer.agent_released_at_stop", campaign=machine.name,
                                 agent_id=leg.agent_id)
                        if leg.bridge_id is not None:
                            await self._destroy_bridge(leg.bridge_id)
                        await self._hang_up(leg.channel_id)
        except (TimeoutError, aiohttp.ClientError) as error:
            log.warning("dialer.release_at_stop_failed", error=str(error) or type(error).__name__)

    async def _settle(self, attempt: OpenAttempt, *, looked_before: bool = False) -> None:
        machine = self.campaigns.get(attempt.campaign) or await self._load(attempt.campaign)
        attempt_id = attempt.attempt_id
        channel = self._model.channels.get(attempt_id)
        if channel is not None:
            answered = channel.state == "Up"
            await self._feed(
                machine,
                AttemptAdopted(attempt_id, attempt.phone, attempt.started_at.timestamp(), answered),
            )
            log.info("dialer.attempt_adopted", campaign=attempt.campaign, attempt_id=attempt_id)
            return
        record = await self._ledger.read(attempt_id)  # AmiError: left open for the next resync
        result = settled_result(record, None, channel_seen=False)
        age = self._now_dt() - attempt.started_at
        if result is Result.NOT_DIALED and not looked_before and age < _SETTLE_AGE:
            self._settling.add(attempt_id)
            self._tasks.spawn(self._settle_later(attempt, (_SETTLE_AGE - age).total_seconds()))
            return
        cause = record.cause if record is not None else None
        log.info(
            "dialer.attempt_settled",
            campaign=attempt.campaign,
            attempt_id=attempt_id,
            result=result.value,
            cause=cause,
        )
        await self._store_result(attempt.campaign, attempt_id, result, cause)

    async def _settle_later(self, attempt: OpenAttempt, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await self._settle(attempt, looked_before=True)
        except TICK_ERRORS as error:  # left open: the next resync looks again
            log.warning("dialer.settle_failed", attempt_id=attempt.attempt_id, error=str(error))
        finally:
            self._settling.discard(attempt.attempt_id)

    # -- gauges ---------------------------------------------------------------------------

    async def gauges(self) -> list[DialerGauges]:
        result = []
        for machine in self.campaigns.values():
            decision = machine.last_decision
            result.append(
                DialerGauges(
                    campaign=machine.name,
                    lines_active=len(machine.attempts),
                    dial_level=decision.dial_level if decision else 0.0,
                    occupancy_ratio=machine.occupancy,
                    abandon_ratio_by_window=_windows(
                        await self._repo.abandon_ratios(machine.name, self._now_dt())
                    ),
                    leads_by_state=await self._repo.lead_counts(machine.name),
                )
            )
        return result


_SETTLE_AGE = timedelta(seconds=ORIGINATE_SETTLE_S)


def seat_name(agent_id: str, campaign: str) -> str:
    """An agent bridge's name: whose leg it seats, so a restarted controller can adopt it."""
    return f"{agent_id}:{campaign}"


@dataclass(frozen=True, slots=True)
class SeatedLeg:
    """An agent bridge of this worker's as ARI lists it, with its leg still in it."""

    bridge_id: str
    channel_id: str
    name: str
    others: tuple[str, ...]  # the customer on the call, if any

    @property
    def agent_id(self) -> str | None:
        agent, colon, _ = self.name.partition(":")
        return agent if colon and agent else None

    @property
    def campaign(self) -> str | None:
        _, colon, campaign = self.name.partition(":")
        return campaign if colon and campaign else None


def seated_leg(bridge: Mapping[str, Any]) -> SeatedLeg | None:
    """The agent ``bridge`` (an item of ``GET /bridges``) if its leg is still in it."""
    bridge_id, channels = str(bridge["id"]), bridge.get("channels")
    channel_id = bridge_id.removeprefix(AGENT_BRIDGE_PREFIX)
    if not isinstance(channels, list) or channel_id not in channels:
        return None
    name = bridge.get("name")
    return SeatedLeg(
        bridge_id, channel_id, name if isinstance(name, str) else "",
        tuple(c for c in channels if isinstance(c, str) and c != channel_id),
    )


def _last_call(calls: Sequence[ConnectedCall], agent_id: str) -> LastCall | None:
    """The last of ``calls`` (oldest first) that ``agent_id`` took."""
    last = next((call for call in reversed(calls) if call.agent_id == agent_id), None)
    if last is None:
        return None
    ended = last.talk_ended_at
    return LastCall(last.attempt_id, ended.timestamp() if ended is not None else None,
                    disposed=last.disposition is not None)


def _utc(moment: float | None) -> datetime | None:
    return datetime.fromtimestamp(moment, UTC) if moment is not None else None


def _windows(ratios: Mapping[str, float]) -> dict[AbandonWindow, float]:
    return {window: ratios.get(window, 0.0) for window in ABANDON_WINDOWS}
