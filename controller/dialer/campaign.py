"""One campaign's lifecycle as a state machine: events in, commands out (sans-I/O, like h11).

The live runner (``dialer/runner.py``) and the day simulator (``dialer/simulate.py``) drive this
same machine: the runner feeds it what Asterisk and the store say and carries its commands out
over AMI, ARI and SQL; the simulator feeds it a simulated world's events and carries the
commands out in that world. So the pacing numbers the simulator reports are those of the code
that dials. Nothing here does I/O, reads a clock or sleeps: ``handle(event, now)`` is the one
entry point, timers are commands (``StartGrace``, ``StartWrapup``) whose expiry the driver
feeds back as events (``GraceOver``, ``WrapupOver``).

Agents sit on nailed-up legs (``LegState``): ``DIALING`` (originated to the agent's phone) ->
``READY`` (answered, alone in a bridge of its own) -> ``ON_CALL`` -> ``WRAPUP`` -> ``READY`` ...;
``GONE`` when the leg ends (the agent hung up, did not answer, or the campaign released it),
called again after ``AGENT_RETRY_S``. In wrap-up the agent may press a key of the campaign's
``dispositions`` (``AgentKeyPressed``): that says what the call came to (``RecordDisposition``)
and ends the wrap-up at once, with a tone to the agent (``PlayKeyTone``); another key in
wrap-up gets the refusal tone and changes nothing; keys on a call are the customer's to hear.
In ``preview`` mode a ready agent's key asks for a call: the next lead is claimed and dialed for
that agent (the taken tone), and its answer goes to that agent; an agent with a call asked for
and not over yet, or on a campaign not running, hears the refusal tone, as does an agent whose
call found no lead, or ended with no answer or on a machine (ask again for the next one).

Customer attempts (``AttemptState``): ``DIALING`` (claimed and originated; ringing) ->
``SCREENING`` (answered, AMD listening: pacing counts it as a likely connect from here, seconds
before the verdict) -> ``WAITING`` (classified human, needs an agent) -> ``CONNECTING`` (an
agent is given; the bridge is being made) -> ``CONNECTED``; or ``WAITING`` -> ``ABANDONED`` when
no agent came within ``ABANDON_GRACE_SECONDS`` (the safe-harbor message plays); or ``MACHINE``
(AMD said machine). Every attempt ends at its channel's hangup with exactly one
``RecordResult``. An attempt ``ADOPTED`` after a restart was dialed by a controller that is
gone: what happened to it then is only in its AstDB record, so its result is settled from there
(``from_ledger``). An agent leg still seated in its bridge after a restart is
``AgentLegAdopted``: on the call of the adopted attempt in its bridge, in the wrap-up of its
last call, or ready, so a restart neither cuts a conversation nor rings the agent's phone again.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from controller.dialer.pacing import (
    ABANDON_GRACE_SECONDS,
    PacingDecision,
    PacingInput,
    PacingMode,
    PacingSettings,
    PacingStats,
)
from controller.dialer.peer_pacers import ModelPacer, Pacer
from controller.dialer.policy import CampaignState, Result, classify_hangup
from controller.dialer.settings import CampaignSettings, Disposition

AGENT_RETRY_S = 10.0
ORIGINATE_FAILURE_GRACE_S = 2.0  # a refused originate may still have made a channel


class LegState(StrEnum):
    DIALING = "dialing"
    READY = "ready"
    ON_CALL = "on_call"
    WRAPUP = "wrapup"
    GONE = "gone"


LOGGED_IN = frozenset({LegState.READY, LegState.ON_CALL, LegState.WRAPUP})
# An agent leg's bridge is named after its channel, so leftovers are known by name.
AGENT_BRIDGE_PREFIX = "agent-bridge-"


class AttemptState(StrEnum):
    DIALING = "dialing"
    SCREENING = "screening"
    WAITING = "waiting"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    ABANDONED = "abandoned"
    MACHINE = "machine"
    ADOPTED = "adopted"


# Not classified yet: AMD's verdict (or, with AMD off, the hand-over itself) is still to come.
SCREENABLE = (AttemptState.DIALING, AttemptState.SCREENING)

# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes: account agent time, launch what pacing allows, call missing agents."""


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: CampaignState


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """The campaign's settings were updated: pacing and wrap-up follow from the next decision
    on; calls and wrap-ups already running keep what they started with."""

    settings: MachineSettings


@dataclass(frozen=True, slots=True)
class AgentsAssigned:
    agent_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClaimedLead:
    attempt_id: str
    phone: str


@dataclass(frozen=True, slots=True)
class Claimed:
    """The answer to ``Claim``: the attempts committed in the store (possibly fewer, or none)."""

    leads: tuple[ClaimedLead, ...]


@dataclass(frozen=True, slots=True)
class OriginateRefused:
    attempt_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PickedUp:
    """The customer's line answered; AMD (if on) is listening, its verdict comes next."""

    attempt_id: str


@dataclass(frozen=True, slots=True)
class AmdMachine:
    attempt_id: str


@dataclass(frozen=True, slots=True)
class CustomerAnswered:
    """The customer answered and was classified human (or AMD is off): it needs an agent."""

    attempt_id: str
    channel_name: str = ""


@dataclass(frozen=True, slots=True)
class AgentLegUp:
    channel_id: str


@dataclass(frozen=True, slots=True)
class AgentSeated:
    channel_id: str
    bridge_id: str


@dataclass(frozen=True, slots=True)
class AgentLegGone:
    channel_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Bridged:
    attempt_id: str


@dataclass(frozen=True, slots=True)
class BridgeFailed:
    attempt_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Hangup:
    channel_id: str
    cause: int | None


@dataclass(frozen=True, slots=True)
class GraceOver:
    attempt_id: str


@dataclass(frozen=True, slots=True)
class WrapupOver:
    """The wrap-up after ``attempt_id`` has lasted its time (ignored if it ended already)."""

    agent_id: str
    attempt_id: str


@dataclass(frozen=True, slots=True)
class AgentKeyPressed:
    """The agent pressed ``key`` (DTMF) on the nailed-up leg ``channel_id``."""

    channel_id: str
    key: str


@dataclass(frozen=True, slots=True)
class AttemptAdopted:
    """After a restart: an open attempt of this worker whose channel is still up."""

    attempt_id: str
    phone: str
    launched_at: float
    answered: bool


@dataclass(frozen=True, slots=True)
class LastCall:
    """The last call an agent took on the campaign, as the store has it."""

    attempt_id: str
    ended_at: float | None  # None: not ended (as far as the store knows)
    disposed: bool


@dataclass(frozen=True, slots=True)
class AgentLegAdopted:
    """After a restart: an agent leg of this worker still seated in its bridge, alone or with
    ``customer`` on it (an attempt adopted just before); ``last_call`` tells whether an idle
    leg is in a wrap-up still."""

    agent_id: str
    channel_id: str
    bridge_id: str
    customer: str | None
    last_call: LastCall | None = None


Event = (
    Tick | StateChanged | SettingsChanged | AgentsAssigned | Claimed | OriginateRefused
    | PickedUp | AmdMachine | CustomerAnswered | AgentLegUp | AgentSeated | AgentLegGone
    | Bridged | BridgeFailed | Hangup | GraceOver | WrapupOver | AgentKeyPressed
    | AttemptAdopted | AgentLegAdopted
)


# -- commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """Claim up to ``count`` leads; answer with ``Claimed``."""

    count: int
    decision: PacingDecision


@dataclass(frozen=True, slots=True)
class Originate:
    attempt_id: str
    phone: str


@dataclass(frozen=True, slots=True)
class CallAgent:
    agent_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class SeatAgent:
    """Put the answered agent leg alone in a bridge of its own; answer with ``AgentSeated``."""

    agent_id: str
    channel_id: str
    bridge_id: str


@dataclass(frozen=True, slots=True)
class Connect:
    """Add the customer to the agent's bridge; answer with ``Bridged`` or ``BridgeFailed``."""

    attempt_id: str
    agent_id: str
    bridge_id: str


@dataclass(frozen=True, slots=True)
class PlaySafeHarbor:
    attempt_id: str


@dataclass(frozen=True, slots=True)
class HangUp:
    channel_id: str


@dataclass(frozen=True, slots=True)
class DestroyBridge:
    bridge_id: str


@dataclass(frozen=True, slots=True)
class StartGrace:
    """Feed ``GraceOver`` after ``seconds``."""

    attempt_id: str
    seconds: float


@dataclass(frozen=True, slots=True)
class StartWrapup:
    """Feed ``WrapupOver`` when the agent's after-call work ends (``seconds`` by the settings)."""

    agent_id: str
    attempt_id: str
    seconds: float


@dataclass(frozen=True, slots=True)
class RecordDisposition:
    """The agent said with ``key`` what the call of ``attempt_id`` came to: store it, and do
    to the lead what the disposition says."""

    attempt_id: str
    agent_id: str
    key: str
    disposition: Disposition


@dataclass(frozen=True, slots=True)
class NoteAnswered:
    """The customer answered: write it down where a restart finds it."""

    attempt_id: str


@dataclass(frozen=True, slots=True)
class NoteConnected:
    attempt_id: str
    agent_id: str
    phone: str
    channel_name: str
    launched_at: float
    answer_to_agent_s: float


@dataclass(frozen=True, slots=True)
class RecordResult:
    """The attempt ended: store its result. ``from_ledger``: an adopted attempt, whose result
    is settled from its AstDB record (``result`` is then what this worker saw since)."""

    attempt_id: str
    result: Result
    cause: int | None
    answered_at: float | None
    talk_seconds: float | None
    from_ledger: bool = False


class KeyTone(StrEnum):
    """What the agent hears after a key: taken (a disposition, or a preview call asked for),
    or not (no disposition on that key; no call to be had now)."""

    TAKEN = "taken"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class PlayKeyTone:
    """Play ``tone`` to the agent's leg ``channel_id``: its key was heard."""

    channel_id: str
    tone: KeyTone


@dataclass(frozen=True, slots=True)
class SettleIfNoChannel:
    """An originate was refused: if no channel exists after ``seconds``, feed ``Hangup``."""

    attempt_id: str
    seconds: float


Command = (
    Claim | Originate | CallAgent | SeatAgent | Connect | PlaySafeHarbor | HangUp
    | DestroyBridge | StartGrace | StartWrapup | NoteAnswered | NoteConnected | RecordResult
    | RecordDisposition | PlayKeyTone | SettleIfNoChannel
)


# -- state ----------------------------------------------------------------------------------


@dataclass(slots=True)
class AgentLeg:
    agent_id: str
    channel_id: str
    state: LegState = LegState.DIALING
    since: float = 0.0
    bridge_id: str | None = None
    customer: str | None = None
    wrapup_of: str | None = None  # in WRAPUP: the attempt whose call it follows
    last_failure: float = -math.inf


@dataclass(slots=True)
class Attempt:
    attempt_id: str
    phone: str
    launched_at: float
    state: AttemptState = AttemptState.DIALING
    picked_up_at: float | None = None  # when the line answered (before AMD's verdict)
    answered_at: float | None = None  # when it needed an agent, or AMD said machine
    connected_at: float | None = None
    agent_id: str | None = None
    channel_name: str = ""
    asked_by: str | None = None  # preview: the agent whose key asked for this call


@dataclass(frozen=True, slots=True)
class MachineSettings:
    pacing: PacingSettings
    wrapup_seconds: float
    dispositions: Mapping[str, Disposition] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: CampaignSettings) -> MachineSettings:
        return cls(
            PacingSettings(
                mode=PacingMode(settings.dialing_mode),
                abandon_target=settings.abandon.target_percent / 100.0,
                line_cap=settings.line_cap,
                cps_cap=settings.calls_per_second,
                ring_timeout=float(settings.ring_timeout_seconds),
            ),
            float(settings.agent_wrapup_seconds),
            settings.dispositions,
        )


def pacing_stats(settings: CampaignSettings) -> PacingStats:
    """History whose abandon windows are the campaign's regulatory windows plus the last hour."""
    return PacingStats(window_hours=(1.0, *(float(h) for h in settings.abandon.windows_hours)))


class CampaignMachine:
    """The state of one campaign on one worker; see the module docstring."""

    def __init__(
        self,
        name: str,
        settings: MachineSettings,
        stats: PacingStats,
        new_channel_id: Callable[[], str],
        pacer_for: Callable[[PacingSettings], Pacer] = ModelPacer,
        state: CampaignState = CampaignState.CREATED,
    ) -> None:
        self.name = name
        self.settings = settings
        self.stats = stats
        self.state = state
        self._new_channel_id = new_channel_id
        self._pacer_for = pacer_for
        self._pacer = pacer_for(settings.pacing)
        self.agent_ids: tuple[str, ...] = ()
        self._uncalled: set[str] = set()  # assigned agents with no leg, or a gone one
        # legs by state, kept by _move: READY longest idle first (legs become ready in time
        # order), so pacing and dispatch never scan every agent
        self._by_state: dict[LegState, dict[str, AgentLeg]] = {state: {} for state in LegState}
        self._ready = self._by_state[LegState.READY]
        self.agents: dict[str, AgentLeg] = {}
        self.attempts: dict[str, Attempt] = {}
        self.waiting: deque[str] = deque()
        self._leg_of_channel: dict[str, AgentLeg] = {}
        self._launches: deque[float] = deque()
        self._last_launch = -math.inf
        self._claim_pending = False
        # preview: agents who asked for a call, in order; those the pending claim is for
        self._asks: deque[str] = deque()
        self._asks_claimed: deque[str] = deque()
        self._adopted: set[str] = set()
        self._last_tick: float | None = None
        self.last_decision: PacingDecision | None = None
        self.talk_s = 0.0
        self.logged_in_s = 0.0

    # -- the one entry point ----------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Command]:
        out: list[Command] = []
        match event:
            case Tick():
                self._on_tick(now, out)
            case StateChanged(state):
                self.state = state
                if state is not CampaignState.RUNNING:  # no call comes for these now
                    self._refuse_asks(self._asks, out)
                    self._asks.clear()
                self._ensure_agents(now, out)
            case SettingsChanged(settings):
                self.settings = settings
                self._pacer = self._pacer_for(settings.pacing)
                if settings.pacing.mode is not PacingMode.PREVIEW:
                    self._asks.clear()  # pacing brings them calls now
            case AgentsAssigned(agent_ids):
                self.agent_ids = agent_ids
                self._uncalled = {
                    agent for agent in agent_ids
                    if agent not in self.agents or self.agents[agent].state is LegState.GONE
                }
                self._release_unassigned(out)
                self._ensure_agents(now, out)
            case Claimed(leads):
                self._on_claimed(leads, now, out)
            case OriginateRefused(attempt_id, _):
                if attempt_id in self.attempts:
                    out.append(SettleIfNoChannel(attempt_id, ORIGINATE_FAILURE_GRACE_S))
            case PickedUp(attempt_id):
                self._on_picked_up(attempt_id, now)
            case AmdMachine(attempt_id):
                self._on_amd_machine(attempt_id, now)
            case CustomerAnswered(attempt_id, channel_name):
                self._on_customer_answered(attempt_id, channel_name, now, out)
            case AgentLegUp(channel_id):
                self._on_agent_leg_up(channel_id, out)
            case AgentSeated(channel_id, bridge_id):
                leg = self._leg_of_channel.get(channel_id)
                if leg is not None and leg.state is LegState.DIALING:
                    leg.bridge_id = bridge_id
                    self._agent_ready(leg, now, out)
            case AgentLegGone(channel_id, _):
                self._agent_gone(channel_id, now, out)
            case Bridged(attempt_id):
                self._on_bridged(attempt_id, now, out)
            case BridgeFailed(attempt_id, _):
                self._on_bridge_failed(attempt_id, now, out)
            case Hangup(channel_id, cause):
                if channel_id in self._leg_of_channel:
                    self._agent_gone(channel_id, now, out)
                else:
                    self._on_attempt_ended(channel_id, cause, now, out)
            case GraceOver(attempt_id):
                self._on_grace_over(attempt_id, now, out)
            case WrapupOver(agent_id, attempt_id):
                leg = self.agents.get(agent_id)
                # a key may have ended this wrap-up, and the leg be in the next one by now
                if leg is not None and leg.state is LegState.WRAPUP and (
                    leg.wrapup_of == attempt_id
                ):
                    self._end_wrapup(leg, now, out)
            case AgentKeyPressed(channel_id, key):
                self._on_agent_key(channel_id, key, now, out)
            case AttemptAdopted(attempt_id, phone, launched_at, answered):
                # still ringing: its fate is ahead; answered: what it came to is in AstDB
                self.attempts[attempt_id] = Attempt(
                    attempt_id, phone, launched_at,
                    AttemptState.ADOPTED if answered else AttemptState.DIALING,
                )
                self._adopted.add(attempt_id)
            case AgentLegAdopted():
                self._on_agent_leg_adopted(event, now, out)
        return out

    # -- queries ------------------------------------------------------------------------------

    def owns(self, channel_id: str) -> bool:
        return channel_id in self.attempts or channel_id in self._leg_of_channel

    def agent_on(self, channel_id: str) -> str | None:
        """The agent whose leg ``channel_id`` is, if it is one of ours."""
        leg = self._leg_of_channel.get(channel_id)
        return leg.agent_id if leg is not None else None

    def pacing_input(self, now: float) -> PacingInput:
        while self._launches and self._launches[0] <= now - 1.0:
            self._launches.popleft()
        talking = self._by_state[LegState.ON_CALL].values()
        wrapping = self._by_state[LegState.WRAPUP].values()
        dialing = AttemptState.DIALING
        screening = sum(a.state is AttemptState.SCREENING for a in self.attempts.values())
        return PacingInput(
            now=now,
            agents_logged_in=self._logged_in(),
            agents_ready=len(self._ready),
            talk_elapsed=tuple(now - leg.since for leg in talking),
            wrap_elapsed=tuple(now - leg.since for leg in wrapping),
            in_flight_elapsed=tuple(
                now - a.launched_at for a in self.attempts.values() if a.state is dialing
            ),
            calls_screening=screening,
            calls_waiting=len(self.waiting),
            lines_in_use=len(self.attempts),
            launches_last_second=len(self._launches),
            seconds_since_last_launch=now - self._last_launch,
            calls_asked=len(self._asks),
        )

    def _logged_in(self) -> int:
        return sum(len(self._by_state[state]) for state in LOGGED_IN)

    @property
    def occupancy(self) -> float:
        return self.talk_s / self.logged_in_s if self.logged_in_s else 0.0

    # -- handlers -----------------------------------------------------------------------------

    def _on_tick(self, now: float, out: list[Command]) -> None:
        if self._last_tick is not None:
            elapsed = now - self._last_tick
            self.logged_in_s += elapsed * self._logged_in()
            self.talk_s += elapsed * len(self._by_state[LegState.ON_CALL])
        self._last_tick = now
        if self.state is CampaignState.RUNNING:
            self._ensure_agents(now, out)
            self._launch(now, out)
        elif self.state is CampaignState.STOPPED and not self.attempts:
            self._release_agents(out)

    def _ensure_agents(self, now: float, out: list[Command]) -> None:
        if self.state is not CampaignState.RUNNING or not self._uncalled:
            return
        for agent_id in self.agent_ids:
            if agent_id not in self._uncalled:
                continue
            leg = self.agents.get(agent_id)
            if leg is not None and (
                leg.state is not LegState.GONE or now - leg.last_failure < AGENT_RETRY_S
            ):
                continue
            leg = self._new_leg(agent_id, self._new_channel_id(), now)
            out.append(CallAgent(agent_id, leg.channel_id))

    def _new_leg(self, agent_id: str, channel_id: str, now: float) -> AgentLeg:
        """The agent's leg from now on (``DIALING``), in place of a gone one."""
        old = self.agents.get(agent_id)
        if old is not None:
            self._by_state[old.state].pop(agent_id, None)
        leg = AgentLeg(agent_id, channel_id, since=now)
        self._by_state[LegState.DIALING][agent_id] = leg
        self._uncalled.discard(agent_id)
        self.agents[agent_id] = leg
        self._leg_of_channel[channel_id] = leg
        return leg

    def _launch(self, now: float, out: list[Command]) -> None:
        if self._claim_pending:
            return  # the last claim's answer is not in yet: its calls are not counted yet
        decision = self._pacer.decide(self.pacing_input(now), self.stats)
        self.last_decision = decision
        if decision.launch > 0:
            self._claim_pending = True
            for _ in range(min(decision.launch, len(self._asks))):
                self._asks_claimed.append(self._asks.popleft())
            out.append(Claim(decision.launch, decision))

    def _on_claimed(
        self, leads: tuple[ClaimedLead, ...], now: float, out: list[Command]
    ) -> None:
        self._claim_pending = False
        for lead in leads:
            self._launches.append(now)
            self._last_launch = now
            asked_by = self._asks_claimed.popleft() if self._asks_claimed else None
            self.attempts[lead.attempt_id] = Attempt(
                lead.attempt_id, lead.phone, now, asked_by=asked_by
            )
            out.append(Originate(lead.attempt_id, lead.phone))
        self._refuse_asks(self._asks_claimed, out)  # no lead to be had for these
        self._asks_claimed.clear()

    def _on_picked_up(self, attempt_id: str, now: float) -> None:
        attempt = self.attempts.get(attempt_id)
        if attempt is not None and attempt.state is AttemptState.DIALING:
            attempt.state, attempt.picked_up_at = AttemptState.SCREENING, now

    def _on_amd_machine(self, attempt_id: str, now: float) -> None:
        attempt = self.attempts.get(attempt_id)
        if attempt is not None and attempt.state in SCREENABLE:
            attempt.state, attempt.answered_at = AttemptState.MACHINE, now
            attempt.picked_up_at = attempt.picked_up_at or now

    def _on_customer_answered(
        self, attempt_id: str, channel_name: str, now: float, out: list[Command]
    ) -> None:
        attempt = self.attempts.get(attempt_id)
        if attempt is None or attempt.state not in (*SCREENABLE, AttemptState.ADOPTED):
            # not ours to connect (a leftover of another run): nobody will take it
            out.append(PlaySafeHarbor(attempt_id))
            return
        attempt.answered_at, attempt.channel_name = now, channel_name
        self.stats.record_attempt(
            connected=True,
            seconds=now - attempt.launched_at,
            answered_after=(attempt.picked_up_at or now) - attempt.launched_at,
        )
        out.append(NoteAnswered(attempt_id))
        asker = self._ready.get(attempt.asked_by) if attempt.asked_by is not None else None
        leg = asker or self._longest_idle()
        if leg is not None:
            self._connect(attempt, leg, now, out)
        else:
            self._wait_for_agent(attempt, ABANDON_GRACE_SECONDS, out)

    def _wait_for_agent(self, attempt: Attempt, grace: float, out: list[Command]) -> None:
        attempt.state = AttemptState.WAITING
        self.waiting.append(attempt.attempt_id)
        out.append(StartGrace(attempt.attempt_id, grace))

    def _longest_idle(self) -> AgentLeg | None:
        return next(iter(self._ready.values()), None)

    def _connect(self, attempt: Attempt, leg: AgentLeg, now: float, out: list[Command]) -> None:
        assert leg.bridge_id is not None  # a READY leg is seated
        self._move(leg, LegState.ON_CALL, now)
        leg.customer = attempt.attempt_id
        attempt.state, attempt.agent_id, attempt.connected_at = (
            AttemptState.CONNECTING, leg.agent_id, now,
        )
        out.append(Connect(attempt.attempt_id, leg.agent_id, leg.bridge_id))

    def _on_bridged(self, attempt_id: str, now: float, out: list[Command]) -> None:
        attempt = self.attempts.get(attempt_id)
        if attempt is None or attempt.state is not AttemptState.CONNECTING:
            return
        attempt.state = AttemptState.CONNECTED
        assert attempt.agent_id is not None and attempt.answered_at is not None
        self.stats.record_live_answer(now, abandoned=False)
        out.append(
            NoteConnected(
                attempt_id, attempt.agent_id, attempt.phone, attempt.channel_name,
                attempt.launched_at, now - attempt.answered_at,
            )
        )

    def _on_bridge_failed(self, attempt_id: str, now: float, out: list[Command]) -> None:
        """The agent's bridge refused the customer. Either the customer is gone (its Hangup
        follows) or the agent's bridge is broken; offering the same leg again could loop, so the
        leg is ended and called again later, and the customer waits for another agent for what
        is left of its grace."""
        attempt = self.attempts.get(attempt_id)
        if attempt is None or attempt.state is not AttemptState.CONNECTING:
            return
        leg = self.agents.get(attempt.agent_id or "")
        attempt.agent_id = attempt.connected_at = None
        if leg is not None and leg.customer == attempt_id:
            leg.customer = None
            out.append(HangUp(leg.channel_id))
            self._agent_gone(leg.channel_id, now, out)
        assert attempt.answered_at is not None
        left = ABANDON_GRACE_SECONDS - (now - attempt.answered_at)
        if left <= 0:  # it has had no agent for its whole grace: an abandon, not a late connect
            self._abandon(attempt, now, out)
        elif (other := self._longest_idle()) is not None:
            self._connect(attempt, other, now, out)
        else:
            self._wait_for_agent(attempt, left, out)

    def _on_grace_over(self, attempt_id: str, now: float, out: list[Command]) -> None:
        attempt = self.attempts.get(attempt_id)
        if attempt is not None and attempt.state is AttemptState.WAITING:
            self.waiting.remove(attempt_id)
            self._abandon(attempt, now, out)

    def _abandon(self, attempt: Attempt, now: float, out: list[Command]) -> None:
        attempt.state = AttemptState.ABANDONED
        self.stats.record_live_answer(now, abandoned=True)
        out.append(PlaySafeHarbor(attempt.attempt_id))

    def _on_attempt_ended(
        self, attempt_id: str, cause: int | None, now: float, out: list[Command]
    ) -> None:
        attempt = self.attempts.pop(attempt_id, None)
        if attempt is None:
            return
        if attempt.state is AttemptState.WAITING:
            self.waiting.remove(attempt_id)
        needed_agent = attempt.state in (
            AttemptState.WAITING, AttemptState.CONNECTING, AttemptState.CONNECTED,
            AttemptState.ABANDONED,
        )
        if attempt.state in (*SCREENABLE, AttemptState.MACHINE):
            # connected attempts were recorded when they needed their agent
            picked_up = attempt.picked_up_at
            self.stats.record_attempt(
                connected=False,
                seconds=now - attempt.launched_at,
                answered_after=None if picked_up is None else picked_up - attempt.launched_at,
            )
        talk = None
        if attempt.connected_at is not None:
            talk = now - attempt.connected_at
            self.stats.record_talk(talk)
        leg = self.agents.get(attempt.agent_id or "")
        if leg is not None and leg.customer == attempt_id:
            leg.customer = None
            self._begin_wrapup(leg, attempt_id, now, now, out)
        if attempt.asked_by is not None and attempt.agent_id is None:
            self._refuse_asks((attempt.asked_by,), out)  # nobody to talk to: ask again
        # adopted and not seen answering since: what it came to is in its AstDB record
        adopted = attempt_id in self._adopted and attempt.answered_at is None
        self._adopted.discard(attempt_id)
        result = classify_hangup(
            cause,
            answered=attempt.answered_at is not None,
            machine=attempt.state is AttemptState.MACHINE,
            agent_connected=attempt.agent_id is not None,
        )
        out.append(
            RecordResult(
                attempt_id, result, cause,
                attempt.answered_at if needed_agent else None, talk, from_ledger=adopted,
            )
        )

    def _on_agent_leg_up(self, channel_id: str, out: list[Command]) -> None:
        leg = self._leg_of_channel.get(channel_id)
        if leg is None or leg.state is not LegState.DIALING:
            out.append(HangUp(channel_id))  # a leg we did not call (or from before a restart)
            return
        out.append(SeatAgent(leg.agent_id, channel_id, f"{AGENT_BRIDGE_PREFIX}{channel_id}"))

    def _on_agent_leg_adopted(
        self, event: AgentLegAdopted, now: float, out: list[Command]
    ) -> None:
        """Take over a leg a dead controller seated, so neither the agent nor a customer
        talking to them notices the restart: on the call it carries, in the wrap-up of its last
        call if that is not over (a key still gives that call its disposition), or ready.
        Whether the agent is still on the campaign is settled by the next ``AgentsAssigned``,
        as for any leg."""
        agent_id, customer = event.agent_id, event.customer
        attempt = self.attempts.get(customer) if customer is not None else None
        existing = self.agents.get(agent_id)
        if (existing is not None and existing.state is not LegState.GONE) or (
            customer is not None
            and (attempt is None or attempt.state is not AttemptState.ADOPTED)
        ):  # a second leg for the agent, or a customer nobody here follows: let both go
            out.append(HangUp(event.channel_id))
            out.append(DestroyBridge(event.bridge_id))
            if customer is not None:  # nobody is left to talk to it
                out.append(HangUp(customer))
            return
        leg = self._new_leg(agent_id, event.channel_id, now)
        leg.bridge_id = event.bridge_id
        if attempt is None:
            last = event.last_call
            if (
                last is not None and not last.disposed and last.ended_at is not None
                and now < last.ended_at + self.settings.wrapup_seconds
            ):
                self._begin_wrapup(leg, last.attempt_id, last.ended_at, now, out)
            else:
                self._move(leg, LegState.READY, now)
            return
        self._move(leg, LegState.ON_CALL, now)
        leg.customer = attempt.attempt_id
        # connected before the restart: when is not known here, so its talk is not measured
        attempt.state, attempt.agent_id = AttemptState.CONNECTED, agent_id

    def _on_agent_key(self, channel_id: str, key: str, now: float, out: list[Command]) -> None:
        leg = self._leg_of_channel.get(channel_id)
        if leg is None:
            return
        if leg.state is LegState.READY and self.settings.pacing.mode is PacingMode.PREVIEW:
            self._on_ask(leg, now, out)
            return
        if leg.state is not LegState.WRAPUP or leg.wrapup_of is None:
            return  # on a call the key is the customer's to hear; ready, it says nothing
        disposition = self.settings.dispositions.get(key)
        if disposition is None:
            out.append(PlayKeyTone(channel_id, KeyTone.REFUSED))
            return
        out.append(RecordDisposition(leg.wrapup_of, leg.agent_id, key, disposition))
        out.append(PlayKeyTone(channel_id, KeyTone.TAKEN))
        self._end_wrapup(leg, now, out)

    def _on_ask(self, leg: AgentLeg, now: float, out: list[Command]) -> None:
        """Preview: the ready agent asks for a call, launched now if the caps allow (else at
        the next tick); one at a time per agent."""
        agent_id = leg.agent_id
        asked = (
            agent_id in self._asks or agent_id in self._asks_claimed
            or any(attempt.asked_by == agent_id for attempt in self.attempts.values())
        )
        if self.state is not CampaignState.RUNNING or asked:
            out.append(PlayKeyTone(leg.channel_id, KeyTone.REFUSED))
            return
        self._asks.append(agent_id)
        out.append(PlayKeyTone(leg.channel_id, KeyTone.TAKEN))
        self._launch(now, out)

    def _refuse_asks(self, agent_ids: Iterable[str], out: list[Command]) -> None:
        """Tell each agent still ready that the call it asked for will not come."""
        for agent_id in agent_ids:
            if (leg := self._ready.get(agent_id)) is not None:
                out.append(PlayKeyTone(leg.channel_id, KeyTone.REFUSED))

    def _begin_wrapup(
        self, leg: AgentLeg, attempt_id: str, started: float, now: float, out: list[Command]
    ) -> None:
        """The wrap-up after ``attempt_id``'s call, which began at ``started``."""
        self._move(leg, LegState.WRAPUP, started)
        leg.wrapup_of = attempt_id
        left = self.settings.wrapup_seconds - (now - started)  # exact when it begins now
        out.append(StartWrapup(leg.agent_id, attempt_id, left))

    def _end_wrapup(self, leg: AgentLeg, now: float, out: list[Command]) -> None:
        self.stats.record_wrap(now - leg.since)
        self._agent_ready(leg, now, out)

    def _agent_ready(self, leg: AgentLeg, now: float, out: list[Command]) -> None:
        leg.wrapup_of = None
        if leg.agent_id not in self.agent_ids:
            self._release(leg, out)
            return
        self._move(leg, LegState.READY, now)
        leg.customer = None
        if self.waiting:
            attempt = self.attempts[self.waiting.popleft()]
            self._connect(attempt, leg, now, out)

    def _agent_gone(self, channel_id: str, now: float, out: list[Command]) -> None:
        leg = self._leg_of_channel.pop(channel_id, None)
        if leg is None:
            return
        self._drop_ask(leg.agent_id)
        customer = leg.customer
        if leg.state is not LegState.GONE:
            leg.last_failure = now
            self._move(leg, LegState.GONE, leg.since)
        leg.customer = None
        if leg.agent_id in self.agent_ids:
            self._uncalled.add(leg.agent_id)
        if leg.bridge_id is not None:
            out.append(DestroyBridge(leg.bridge_id))
            leg.bridge_id = None
        if customer is not None:  # the agent hung up on the customer: end the customer leg too
            out.append(HangUp(customer))

    def _release_agents(self, out: list[Command]) -> None:
        for leg in self.agents.values():
            if leg.state in (LegState.READY, LegState.WRAPUP, LegState.DIALING):
                self._release(leg, out)
                self._uncalled.add(leg.agent_id)

    def _release_unassigned(self, out: list[Command]) -> None:
        """An agent taken off the campaign (its ``agents`` settings updated) is let go now if
        idle, else once the call and its wrap-up are over (``_agent_ready``)."""
        ready, dialing = self._by_state[LegState.READY], self._by_state[LegState.DIALING]
        for leg in [*ready.values(), *dialing.values()]:
            if leg.agent_id not in self.agent_ids:
                self._release(leg, out)

    def _release(self, leg: AgentLeg, out: list[Command]) -> None:
        """Hang up an agent's leg the campaign no longer needs (no customer on it)."""
        self._drop_ask(leg.agent_id)
        self._move(leg, LegState.GONE, leg.since)
        out.append(HangUp(leg.channel_id))

    def _drop_ask(self, agent_id: str) -> None:
        if agent_id in self._asks:
            self._asks.remove(agent_id)

    def _move(self, leg: AgentLeg, state: LegState, since: float) -> None:
        """The one place a leg changes state (keeps the by-state index)."""
        self._by_state[leg.state].pop(leg.agent_id, None)
        leg.state, leg.since = state, since
        self._by_state[state][leg.agent_id] = leg
