"""The campaign machine: scripted lifecycles, and random event sequences against its invariants."""

from __future__ import annotations

import heapq
import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TypeVar

from hypothesis import event, given, settings
from hypothesis import strategies as st

from controller.dialer.campaign import (
    SCREENABLE,
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
)
from controller.dialer.pacing import ABANDON_GRACE_SECONDS, PacingMode, PacingSettings, PacingStats
from controller.dialer.policy import CampaignState, Result
from controller.dialer.settings import Disposition

AGENTS = ("1001", "1002", "1003")
SALE, DNC = Disposition(name="sale"), Disposition(name="do-not-call", lead="dnc")
DISPOSITIONS = {"1": SALE, "9": DNC}
T = TypeVar("T")


def machine(mode: PacingMode = PacingMode.PROGRESSIVE, line_cap: int = 10,
            cps_cap: float = 10.0, wrapup: float = 5.0) -> CampaignMachine:
    numbers = itertools.count(1)
    return CampaignMachine(
        "c1",
        MachineSettings(
            PacingSettings(mode=mode, line_cap=line_cap, cps_cap=cps_cap, ring_timeout=15.0),
            wrapup_seconds=wrapup,
            dispositions=DISPOSITIONS,
        ),
        PacingStats(),
        lambda: f"leg-{next(numbers)}",
    )


C = TypeVar("C")


def of(kind: type[C], commands: list[Command]) -> list[C]:
    return [c for c in commands if isinstance(c, kind)]


def seated(m: CampaignMachine, agents: tuple[str, ...] = AGENTS, now: float = 0.0) -> None:
    """Start the campaign and bring every agent's leg up and into its bridge."""
    m.handle(AgentsAssigned(agents), now)
    calls = of(CallAgent, m.handle(StateChanged(CampaignState.RUNNING), now))
    assert [c.agent_id for c in calls] == list(agents)
    for call in calls:
        (seat,) = of(SeatAgent, m.handle(AgentLegUp(call.channel_id), now))
        m.handle(AgentSeated(call.channel_id, seat.bridge_id), now)
    assert all(leg.state is LegState.READY for leg in m.agents.values())


def launch(m: CampaignMachine, now: float, ids: list[str]) -> list[Originate]:
    (claim,) = of(Claim, m.handle(Tick(), now))
    assert claim.count >= len(ids)
    leads = tuple(ClaimedLead(i, f"+1555000{i}") for i in ids)
    return of(Originate, m.handle(Claimed(leads), now))


def talking(m: CampaignMachine, attempt_id: str, now: float) -> None:
    """Launch ``attempt_id``, answered and bridged to the longest idle agent at ``now + 1``."""
    launch(m, now, [attempt_id])
    m.handle(CustomerAnswered(attempt_id), now + 1.0)
    m.handle(Bridged(attempt_id), now + 1.0)


def test_progressive_claims_one_call_per_ready_agent_and_waits_for_the_answer() -> None:
    m = machine()
    seated(m)
    (claim,) = of(Claim, m.handle(Tick(), 1.0))
    assert claim.count == len(AGENTS)
    assert of(Claim, m.handle(Tick(), 1.5)) == []  # the claim's answer is not in yet
    originates = of(Originate, m.handle(Claimed((ClaimedLead("a1", "+1"),)), 1.6))
    assert originates == [Originate("a1", "+1")]
    assert m.pacing_input(1.7).lines_in_use == 1


def test_an_answer_reaches_the_longest_idle_agent_and_ends_in_one_human_result() -> None:
    m = machine()
    seated(m)
    launch(m, 1.0, ["a1"])
    out = m.handle(CustomerAnswered("a1", "PJSIP/trunk-1"), 5.0)
    assert of(NoteAnswered, out) == [NoteAnswered("a1")]
    (connect,) = of(Connect, out)
    assert connect.agent_id == "1001"
    (noted,) = of(NoteConnected, m.handle(Bridged("a1"), 5.01))
    assert math.isclose(noted.answer_to_agent_s, 0.01, abs_tol=1e-9)
    out = m.handle(Hangup("a1", 16), 65.0)
    assert of(StartWrapup, out) == [StartWrapup("1001", "a1", 5.0)]
    (result,) = of(RecordResult, out)
    assert (result.result, result.answered_at, result.talk_seconds) == (Result.HUMAN, 5.0, 60.0)
    assert not result.from_ledger
    assert m.agents["1001"].state is LegState.WRAPUP
    m.handle(WrapupOver("1001", "a1"), 70.0)
    assert m.agents["1001"].state is LegState.READY
    # 1001 was busy most recently: the next call goes to 1002
    launch(m, 71.0, ["a2"])
    assert of(Connect, m.handle(CustomerAnswered("a2"), 72.0))[0].agent_id == "1002"


def test_an_answer_with_no_agent_is_abandoned_after_the_grace_and_counted_once() -> None:
    m = machine()
    seated(m, ("1001",))
    launch(m, 1.0, ["a1"])
    m.handle(CustomerAnswered("a1"), 2.0)
    m.handle(Bridged("a1"), 2.0)
    m.handle(Claimed((ClaimedLead("a2", "+2"),)), 3.0)
    out = m.handle(CustomerAnswered("a2"), 4.0)
    assert of(StartGrace, out) == [StartGrace("a2", ABANDON_GRACE_SECONDS)]
    assert of(Connect, out) == []
    assert of(PlaySafeHarbor, m.handle(GraceOver("a2"), 6.0)) == [PlaySafeHarbor("a2")]
    assert m.stats.window_totals(6.0)[1.0] == (2, 1)  # two live answers, one abandoned
    (result,) = of(RecordResult, m.handle(Hangup("a2", 16), 14.0))
    assert result.result is Result.ABANDONED


def test_an_agent_freed_within_the_grace_takes_the_waiting_call() -> None:
    m = machine(wrapup=0.0)
    seated(m, ("1001",))
    launch(m, 1.0, ["a1"])
    m.handle(CustomerAnswered("a1"), 2.0)
    m.handle(Bridged("a1"), 2.0)
    m.handle(Claimed((ClaimedLead("a2", "+2"),)), 2.5)
    m.handle(CustomerAnswered("a2"), 3.0)
    m.handle(Hangup("a1", 16), 3.5)
    (connect,) = of(Connect, m.handle(WrapupOver("1001", "a1"), 3.5))
    assert (connect.attempt_id, connect.agent_id) == ("a2", "1001")
    assert of(PlaySafeHarbor, m.handle(GraceOver("a2"), 5.0)) == []


def test_a_refused_bridge_ends_the_agent_leg_and_the_customer_waits_out_its_grace() -> None:
    m = machine()
    seated(m, ("1001",))
    launch(m, 1.0, ["a1"])
    m.handle(CustomerAnswered("a1"), 2.0)
    leg = m.agents["1001"]
    out = m.handle(BridgeFailed("a1", "channel not found"), 2.5)
    assert HangUp(leg.channel_id) in out and of(DestroyBridge, out)  # the leg is ended...
    assert of(StartGrace, out) == [StartGrace("a1", 1.5)]
    assert leg.state is LegState.GONE
    assert of(PlaySafeHarbor, m.handle(GraceOver("a1"), 4.0)) == [PlaySafeHarbor("a1")]
    # ... and called again after the retry delay
    assert of(CallAgent, m.handle(Tick(), 12.0)) == []  # the retry delay counts from 2.5 s
    assert [c.agent_id for c in of(CallAgent, m.handle(Tick(), 12.6))] == ["1001"]


def test_amd_machines_never_need_an_agent() -> None:
    m = machine()
    seated(m)
    launch(m, 1.0, ["a1"])
    assert m.handle(AmdMachine("a1"), 4.0) == []
    assert m.pacing_input(4.0).in_flight_elapsed == ()
    (result,) = of(RecordResult, m.handle(Hangup("a1", 16), 4.5))
    assert result.result is Result.MACHINE and result.answered_at is None


def test_a_picked_up_call_counts_as_screened_until_amds_verdict() -> None:
    m = machine(PacingMode.PREDICTIVE)
    seated(m)
    launch(m, 1.0, ["human", "machine", "gone"])
    for attempt in ("human", "machine", "gone"):
        assert m.handle(PickedUp(attempt), 6.0) == []
    snapshot = m.pacing_input(7.0)
    assert (snapshot.in_flight_elapsed, snapshot.calls_screening) == ((), 3)
    assert snapshot.calls_in_flight == 3  # progressive pacing still counts them
    assert of(Connect, m.handle(CustomerAnswered("human"), 8.5))
    m.handle(AmdMachine("machine"), 8.5)
    (hung_up,) = of(RecordResult, m.handle(Hangup("gone", 16), 7.5))  # hung up during AMD
    assert hung_up.result is Result.NO_ANSWER
    assert m.pacing_input(9.0).calls_screening == 0
    (machine_result,) = of(RecordResult, m.handle(Hangup("machine", 16), 9.0))
    assert machine_result.result is Result.MACHINE
    # three answers (at 5 s), one of them connected: what the next screened call will need
    assert m.stats.answer_rate == 1.0
    assert m.stats.connects_per_answer == 1 / 3


def test_adopted_attempts_are_settled_from_the_ledger_unless_seen_answering() -> None:
    m = machine()
    seated(m)
    m.handle(AttemptAdopted("old-up", "+1", 0.0, answered=True), 1.0)
    m.handle(AttemptAdopted("old-ringing", "+2", 0.0, answered=False), 1.0)
    (up,) = of(RecordResult, m.handle(Hangup("old-up", 16), 2.0))
    assert up.from_ledger
    m.handle(CustomerAnswered("old-ringing"), 3.0)
    m.handle(Bridged("old-ringing"), 3.0)
    (ringing,) = of(RecordResult, m.handle(Hangup("old-ringing", 16), 9.0))
    assert not ringing.from_ledger and ringing.result is Result.HUMAN


def adopted(m: CampaignMachine, now: float = 1.0) -> None:
    """After a restart: 1001 on the call of the adopted attempt "old", 1002 idle."""
    m.handle(AttemptAdopted("old", "+1", 0.0, answered=True), now)
    m.handle(AgentLegAdopted("1001", "leg-a", "bridge-a", "old"), now)
    m.handle(AgentLegAdopted("1002", "leg-b", "bridge-b", None), now)


def test_adopted_legs_keep_their_call_and_take_the_next_without_ringing_the_agent() -> None:
    m = machine()
    adopted(m)
    assert (m.agents["1001"].state, m.agents["1002"].state) == (LegState.ON_CALL, LegState.READY)
    m.handle(AgentsAssigned(AGENTS), 1.5)
    calls = of(CallAgent, m.handle(StateChanged(CampaignState.RUNNING), 1.5))
    assert [c.agent_id for c in calls] == ["1003"]  # only the agent with no leg is called
    # the adopted customer hangs up: settled from its record, and its agent goes to wrap-up
    out = m.handle(Hangup("old", 16), 10.0)
    (result,) = of(RecordResult, out)
    assert result.from_ledger and result.talk_seconds is None  # connected before we knew
    assert of(StartWrapup, out) == [StartWrapup("1001", "old", 5.0)]
    m.handle(WrapupOver("1001", "old"), 15.0)
    # progressive: one call per ready agent, the adopted ones' bridges take them
    (claim,) = of(Claim, m.handle(Tick(), 15.5))
    assert claim.count == 2
    m.handle(Claimed((ClaimedLead("n1", "+2"), ClaimedLead("n2", "+3"))), 15.5)
    connects = of(Connect, m.handle(CustomerAnswered("n1"), 16.0))
    connects += of(Connect, m.handle(CustomerAnswered("n2"), 16.0))
    assert {(c.agent_id, c.bridge_id) for c in connects} == {
        ("1002", "bridge-b"), ("1001", "bridge-a")}


def test_an_idle_adopted_leg_resumes_the_wrapup_of_its_last_call_until_keyed_or_over() -> None:
    m = machine()  # 5 s of wrap-up
    m.handle(AgentsAssigned(("1001", "1002", "1003", "1004")), 0.0)
    wrapping = m.handle(
        AgentLegAdopted("1001", "leg-a", "bridge-a", None, LastCall("c0", 8.0, False)), 10.0)
    assert wrapping == [StartWrapup("1001", "c0", 3.0)]  # what is left of it
    assert m.agents["1001"].state is LegState.WRAPUP
    keyed = m.handle(AgentKeyPressed("leg-a", "9"), 11.0)
    assert of(RecordDisposition, keyed) == [RecordDisposition("c0", "1001", "9", DNC)]
    assert m.agents["1001"].state is LegState.READY
    # over already, keyed already, or still talking as far as the store knows: ready
    for agent, last in (("1002", LastCall("c1", 4.0, False)), ("1003", LastCall("c2", 9.0, True)),
                        ("1004", LastCall("c3", None, False))):
        assert m.handle(AgentLegAdopted(agent, f"leg-{agent}", "b", None, last), 10.0) == []
        assert m.agents[agent].state is LegState.READY


def test_an_adopted_leg_of_an_agent_taken_off_is_let_go_once_idle() -> None:
    m = machine()
    adopted(m)
    out = m.handle(AgentsAssigned(("1003",)), 2.0)
    assert of(HangUp, out) == [HangUp("leg-b")]  # idle: at once
    m.handle(Hangup("old", 16), 3.0)
    out = m.handle(WrapupOver("1001", "old"), 8.0)
    assert of(HangUp, out) == [HangUp("leg-a")]  # after its call and wrap-up


def test_an_agent_leg_that_cannot_be_adopted_is_let_go_with_its_customer() -> None:
    m = machine()
    seated(m)
    # the agent has a live leg already; a customer nobody here follows
    twice = m.handle(AgentLegAdopted("1001", "leg-x", "bridge-x", None), 1.0)
    assert twice == [HangUp("leg-x"), DestroyBridge("bridge-x")]
    m.handle(AttemptAdopted("old", "+1", 0.0, answered=True), 1.0)
    # still a second leg: its customer would be left alone, so it is hung up too
    second = m.handle(AgentLegAdopted("1001", "leg-y", "bridge-y", "old"), 1.0)
    assert second == [HangUp("leg-y"), DestroyBridge("bridge-y"), HangUp("old")]
    stranger = m.handle(AgentLegAdopted("1009", "leg-z", "bridge-z", "who"), 1.0)
    assert stranger == [HangUp("leg-z"), DestroyBridge("bridge-z"), HangUp("who")]
    assert "1009" not in m.agents and m.agents["1001"].channel_id != "leg-x"


def test_a_refused_originate_waits_for_a_channel_before_it_is_settled() -> None:
    m = machine()
    seated(m)
    launch(m, 1.0, ["a1"])
    assert of(SettleIfNoChannel, m.handle(OriginateRefused("a1", "timeout"), 1.1))
    (result,) = of(RecordResult, m.handle(Hangup("a1", None), 3.1))
    assert result.result is Result.FAILED


def test_paused_claims_nothing_and_stopped_releases_agents_once_calls_ended() -> None:
    m = machine()
    seated(m)
    launch(m, 1.0, ["a1"])
    m.handle(StateChanged(CampaignState.PAUSED), 2.0)
    assert of(Claim, m.handle(Tick(), 3.0)) == []
    m.handle(StateChanged(CampaignState.STOPPED), 4.0)
    assert of(HangUp, m.handle(Tick(), 5.0)) == []  # a1 still rings
    m.handle(Hangup("a1", 19), 6.0)
    released = of(HangUp, m.handle(Tick(), 6.5))
    assert len(released) == len(AGENTS)
    assert of(HangUp, m.handle(Tick(), 7.0)) == []


def test_changed_settings_pace_the_next_decision_and_time_the_next_wrapup() -> None:
    m = machine(line_cap=10, wrapup=5.0)
    seated(m)
    launch(m, 1.0, ["a1"])
    m.handle(CustomerAnswered("a1"), 5.0)
    m.handle(Bridged("a1"), 5.01)
    preview = MachineSettings(PacingSettings(mode=PacingMode.PREVIEW, ring_timeout=15.0), 30.0)
    assert m.handle(SettingsChanged(preview), 6.0) == []
    assert of(Claim, m.handle(Tick(), 7.0)) == []  # preview: the agents trigger the calls
    assert of(StartWrapup, m.handle(Hangup("a1", 16), 20.0)) == [StartWrapup("1001", "a1", 30.0)]
    one_line = PacingSettings(mode=PacingMode.PROGRESSIVE, line_cap=1, ring_timeout=15.0)
    m.handle(SettingsChanged(MachineSettings(one_line, 30.0)), 21.0)
    (claim,) = of(Claim, m.handle(Tick(), 22.0))
    assert claim.count == 1  # two agents ready, one line


def test_an_agent_taken_off_the_campaign_is_let_go_once_its_call_and_wrapup_are_over() -> None:
    m = machine()
    seated(m)
    launch(m, 1.0, ["a1"])
    (connect,) = of(Connect, m.handle(CustomerAnswered("a1"), 2.0))
    m.handle(Bridged("a1"), 2.01)
    on_call, idle = m.agents[connect.agent_id], m.agents["1002"]
    assert (on_call.agent_id, idle.state) == ("1001", LegState.READY)
    assert of(HangUp, m.handle(AgentsAssigned(("1003",)), 3.0)) == [HangUp(idle.channel_id)]
    assert on_call.state is LegState.ON_CALL  # the customer is not cut off
    m.handle(Hangup("a1", 16), 10.0)
    assert of(HangUp, m.handle(WrapupOver("1001", "a1"), 15.0)) == [HangUp(on_call.channel_id)]
    assert m.pacing_input(16.0).agents_logged_in == 1
    (claim,) = of(Claim, m.handle(Tick(), 16.0))
    assert claim.count == 1  # progressive: one call, for 1003 alone
    called = of(CallAgent, m.handle(AgentsAssigned(("1001", "1003")), 20.0))
    assert [call.agent_id for call in called] == ["1001"]  # back on it: called again


def test_a_disposition_key_in_wrapup_is_recorded_for_that_call_and_ends_the_wrapup() -> None:
    m = machine(wrapup=60.0)
    seated(m, ("1001",))
    leg = m.agents["1001"]
    talking(m, "a1", 1.0)
    assert m.handle(AgentKeyPressed(leg.channel_id, "9"), 5.0) == []  # on the call: the customer's
    m.handle(Hangup("a1", 16), 10.0)
    # no such disposition: the agent hears so, the wrap-up goes on
    refused = PlayKeyTone(leg.channel_id, KeyTone.REFUSED)
    assert m.handle(AgentKeyPressed(leg.channel_id, "5"), 11.0) == [refused]
    assert leg.state is LegState.WRAPUP
    out = m.handle(AgentKeyPressed(leg.channel_id, "9"), 14.0)
    assert of(RecordDisposition, out) == [RecordDisposition("a1", "1001", "9", DNC)]
    assert of(PlayKeyTone, out) == [PlayKeyTone(leg.channel_id, KeyTone.TAKEN)]
    assert leg.state is LegState.READY
    assert m.handle(AgentKeyPressed(leg.channel_id, "1"), 15.0) == []  # ready: nothing to say
    # the next call's wrap-up is not cut short by the first one's timer
    talking(m, "a2", 16.0)
    m.handle(Hangup("a2", 16), 40.0)
    assert m.handle(WrapupOver("1001", "a1"), 70.0) == []
    assert leg.state is LegState.WRAPUP
    m.handle(WrapupOver("1001", "a2"), 100.0)
    assert leg.state is LegState.READY


def test_in_preview_a_ready_agent_s_key_dials_one_lead_whose_answer_goes_to_that_agent() -> None:
    m = machine(PacingMode.PREVIEW)
    seated(m)
    assert of(Claim, m.handle(Tick(), 1.0)) == []  # nobody asked: nothing is dialed
    second = m.agents["1002"]
    out = m.handle(AgentKeyPressed(second.channel_id, "#"), 2.0)
    assert of(PlayKeyTone, out) == [PlayKeyTone(second.channel_id, KeyTone.TAKEN)]
    (claim,) = of(Claim, out)
    assert claim.count == 1
    # one call at a time: a second key while it is claimed or rings is refused
    refused = PlayKeyTone(second.channel_id, KeyTone.REFUSED)
    assert m.handle(AgentKeyPressed(second.channel_id, "#"), 2.1) == [refused]
    assert of(Originate, m.handle(Claimed((ClaimedLead("a1", "+1"),)), 2.2)) == [
        Originate("a1", "+1")
    ]
    assert of(Claim, m.handle(Tick(), 2.5)) == []
    assert m.handle(AgentKeyPressed(second.channel_id, "#"), 3.0) == [refused]
    # answered: to the agent who asked, not to the longest idle one (1001)
    (connect,) = of(Connect, m.handle(CustomerAnswered("a1"), 4.0))
    assert connect.agent_id == "1002"


def test_in_preview_an_ask_that_comes_to_nothing_is_told_to_the_agent() -> None:
    m = machine(PacingMode.PREVIEW)
    seated(m)
    first, second = m.agents["1001"], m.agents["1002"]
    m.handle(AgentKeyPressed(first.channel_id, "1"), 1.0)
    # no lead left: the claim comes back empty, the agent hears so and may ask again
    assert m.handle(Claimed(()), 1.1) == [PlayKeyTone(first.channel_id, KeyTone.REFUSED)]
    assert len(of(Claim, m.handle(AgentKeyPressed(first.channel_id, "1"), 2.0))) == 1
    m.handle(Claimed((ClaimedLead("a1", "+1"),)), 2.1)
    # no answer: the same
    assert of(PlayKeyTone, m.handle(Hangup("a1", 19), 20.0)) == [
        PlayKeyTone(first.channel_id, KeyTone.REFUSED)
    ]
    # an ask waiting for the caps when the campaign pauses is refused, and never dialed
    m.handle(AgentKeyPressed(first.channel_id, "1"), 21.0)
    m.handle(AgentKeyPressed(second.channel_id, "1"), 21.1)  # the first one's claim is out
    assert of(PlayKeyTone, m.handle(StateChanged(CampaignState.PAUSED), 21.2)) == [
        PlayKeyTone(second.channel_id, KeyTone.REFUSED)
    ]
    assert m.handle(AgentKeyPressed(second.channel_id, "1"), 21.3) == [
        PlayKeyTone(second.channel_id, KeyTone.REFUSED)
    ]
    m.handle(Claimed(()), 21.4)
    m.handle(StateChanged(CampaignState.RUNNING), 22.0)
    assert of(Claim, m.handle(Tick(), 22.5)) == []


def test_a_key_ends_a_wrapup_for_a_waiting_customer_and_pacing_learns_the_shorter_wrapup() -> None:
    m = machine(wrapup=60.0)
    seated(m, ("1001",))
    leg = m.agents["1001"]
    talking(m, "a1", 1.0)
    m.handle(Hangup("a1", 16), 10.0)
    m.handle(Claimed((ClaimedLead("a2", "+2"),)), 11.0)
    m.handle(CustomerAnswered("a2"), 12.0)  # waits: the only agent is in wrap-up
    out = m.handle(AgentKeyPressed(leg.channel_id, "1"), 13.0)
    assert of(RecordDisposition, out) == [RecordDisposition("a1", "1001", "1", SALE)]
    assert [c.attempt_id for c in of(Connect, out)] == ["a2"]
    assert m.stats.mean_wrap == 3.0


def test_events_of_unknown_channels_change_nothing() -> None:
    m = machine()
    seated(m)
    for stray in (Hangup("nope", 16), Bridged("nope"), GraceOver("nope"), AmdMachine("nope"),
                  WrapupOver("9999", "a1"), AgentKeyPressed("nope", "1"), AgentSeated("nope", "b"),
                  AgentLegGone("nope", "x")):
        assert m.handle(stray, 1.0) == []
    assert of(HangUp, m.handle(AgentLegUp("stray"), 1.0)) == [HangUp("stray")]
    assert of(PlaySafeHarbor, m.handle(CustomerAnswered("stray"), 1.0)) == [PlaySafeHarbor("stray")]


# -- random event sequences ------------------------------------------------------------------

LINE_CAP, CPS_CAP = 2, 1.5  # below what three agents would use: the caps bind


@dataclass
class World:
    """Feeds the machine random but well-formed events and checks every command against the
    invariants; timers fire when time passes them."""

    m: CampaignMachine
    now: float = 0.0
    timers: list[tuple[float, int, Event]] = field(default_factory=list)
    seq: itertools.count = field(default_factory=itertools.count)
    pending_claim: int = 0
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    connects: dict[str, str] = field(default_factory=dict)  # attempt -> agent, unresolved
    serving: dict[str, str] = field(default_factory=dict)  # attempt -> agent, bridged or pending
    results: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    claimed: set[str] = field(default_factory=set)
    answered_at: dict[str, float] = field(default_factory=dict)
    bridged: set[str] = field(default_factory=set)
    safe_harbored: dict[str, float] = field(default_factory=dict)
    ended_at: dict[str, float] = field(default_factory=dict)
    # when an agent was given to the attempt (by a bridge not refused), and until when
    held: dict[str, list[list[float]]] = field(default_factory=lambda: defaultdict(list))
    disposed: set[str] = field(default_factory=set)
    served_by: dict[str, str] = field(default_factory=dict)  # attempt -> its last agent

    def release(self, attempt_id: str) -> None:
        if self.held[attempt_id] and self.held[attempt_id][-1][1] == math.inf:
            self.held[attempt_id][-1][1] = self.now

    def had_agent_at(self, attempt_id: str, moment: float) -> bool:
        return any(start <= moment < end for start, end in self.held[attempt_id])
    launches: list[float] = field(default_factory=list)

    def feed(self, event: Event) -> None:
        if isinstance(event, Hangup) and event.channel_id in self.m.attempts:
            self.ended_at[event.channel_id] = self.now
        for command in self.m.handle(event, self.now):
            self.check(command)
        assert len(self.m.attempts) <= LINE_CAP
        agents = list(self.serving.values())
        assert len(agents) == len(set(agents)), "an agent given two customers"

    def check(self, command: Command) -> None:
        match command:
            case Claim(count):
                assert self.pending_claim == 0, "a second claim while one is pending"
                self.pending_claim = count
            case CallAgent(_, channel_id):  # the agent answers half a second later
                self.later(0.5, AgentLegUp(channel_id))
            case SeatAgent(_, channel_id, bridge_id):
                self.later(0.0, AgentSeated(channel_id, bridge_id))
            case Connect(attempt_id, agent_id):
                assert attempt_id not in self.serving, "a customer bridged to two agents"
                assert agent_id in self.m.agent_ids, "a customer given to an agent taken off"
                self.serving[attempt_id] = self.connects[attempt_id] = agent_id
                self.served_by[attempt_id] = agent_id
                self.held[attempt_id].append([self.now, math.inf])
            case PlaySafeHarbor(attempt_id) if attempt_id in self.claimed:
                assert attempt_id not in self.bridged and attempt_id not in self.serving
                assert self.now >= self.answered_at[attempt_id] + ABANDON_GRACE_SECONDS - 1e-9
                assert attempt_id not in self.safe_harbored
                self.safe_harbored[attempt_id] = self.now
            case StartGrace(attempt_id, seconds):
                self.later(seconds, GraceOver(attempt_id))
            case StartWrapup(agent_id, attempt_id, seconds):
                self.later(seconds, WrapupOver(agent_id, attempt_id))
            case SettleIfNoChannel(attempt_id, seconds):
                self.later(seconds, Hangup(attempt_id, None))
            case RecordDisposition(attempt_id, agent_id):
                # once, by its agent, for a call that is over
                assert attempt_id not in self.disposed and attempt_id in self.results
                assert self.served_by[attempt_id] == agent_id
                self.disposed.add(attempt_id)
            case RecordResult(attempt_id):
                self.release(attempt_id)
                self.results[attempt_id] += 1
                self.serving.pop(attempt_id, None)
                self.connects.pop(attempt_id, None)
            case HangUp(channel_id) if channel_id in self.m.attempts:
                self.later(0.0, Hangup(channel_id, 16))

    def later(self, seconds: float, event: Event) -> None:
        heapq.heappush(self.timers, (self.now + seconds, next(self.seq), event))

    def advance(self, seconds: float) -> None:
        until = self.now + seconds
        while self.timers and self.timers[0][0] <= until:
            at, _, event = heapq.heappop(self.timers)
            self.now = max(self.now, at)
            self.feed(event)
        self.now = until

    def grant(self, share: float) -> None:
        if not self.pending_claim:
            return
        count = math.ceil(self.pending_claim * share)
        leads = tuple(ClaimedLead(f"a{next(self.ids)}", "+1") for _ in range(count))
        self.claimed.update(lead.attempt_id for lead in leads)
        self.launches.extend([self.now] * count)
        self.pending_claim = 0
        self.feed(Claimed(leads))

    def pick(self, items: list[T], index: int) -> T | None:
        return items[index % len(items)] if items else None


ACTIONS = st.sampled_from(
    ["tick", "tick", "pickup", "answer", "answer", "amd", "hangup", "hangup", "bridge_ok",
     "bridge_ok", "bridge_fail", "leg_gone", "refuse", "pause", "resume", "settings", "assign",
     "key"]
)
# What a live settings update may change under the invariants (the caps are theirs to keep).
MODES = (PacingMode.PROGRESSIVE, PacingMode.PREDICTIVE, PacingMode.PREVIEW)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(MODES),
    st.lists(
        st.tuples(ACTIONS, st.integers(0, 50), st.floats(0.0, 3.0), st.floats(0.0, 1.0)),
        min_size=10,
        max_size=150,
    ),
)
def test_random_event_sequences_keep_the_campaign_invariants(
    mode: PacingMode, steps: list[tuple[str, int, float, float]]
) -> None:
    w = World(machine(mode, line_cap=LINE_CAP, cps_cap=CPS_CAP, wrapup=4.0))
    w.feed(AgentsAssigned(AGENTS))
    w.feed(StateChanged(CampaignState.RUNNING))
    for action, index, dt, share in steps:
        w.advance(dt)
        w.feed(Tick())  # the runner ticks twice a second whatever happens
        w.grant(share)  # the store answers a claim with some or all of what was asked
        ringing = [a for a, x in w.m.attempts.items() if x.state.value == "dialing"]
        in_flight = [a for a, x in w.m.attempts.items() if x.state in SCREENABLE]
        match action:
            case "tick":
                w.advance(1.0)
            case "pickup" if (attempt := w.pick(ringing, index)) is not None:
                w.feed(PickedUp(attempt))
            case "answer" if (attempt := w.pick(in_flight, index)) is not None:
                w.answered_at[attempt] = w.now
                w.feed(CustomerAnswered(attempt))
            case "amd" if (attempt := w.pick(in_flight, index)) is not None:
                w.feed(AmdMachine(attempt))
            case "hangup" if (attempt := w.pick(sorted(w.m.attempts), index)) is not None:
                its_leg = w.m.agents.get(w.m.attempts[attempt].agent_id or "")
                w.feed(Hangup(attempt, 16 if share > 0.5 else 17))
                if its_leg is not None and index % 2:  # its agent keys a disposition at once
                    w.feed(AgentKeyPressed(its_leg.channel_id, "1" if share < 0.75 else "9"))
            case "bridge_ok" if (attempt := w.pick(sorted(w.connects), index)) is not None:
                w.connects.pop(attempt)
                w.bridged.add(attempt)
                w.feed(Bridged(attempt))
            case "bridge_fail" if (attempt := w.pick(sorted(w.connects), index)) is not None:
                w.connects.pop(attempt)
                w.serving.pop(attempt)
                w.held[attempt].pop()  # a refused bridge never gave it the agent
                w.feed(BridgeFailed(attempt, "refused"))
            case "leg_gone" if (leg := w.pick(sorted(w.m.agents), index)) is not None:
                gone = w.m.agents[leg].channel_id
                for attempt, agent in list(w.serving.items()):
                    if agent == leg:
                        w.serving.pop(attempt)
                        w.connects.pop(attempt, None)
                        w.release(attempt)
                w.feed(AgentLegGone(gone, "hung up"))
            case "refuse" if (attempt := w.pick(ringing, index)) is not None:
                w.feed(OriginateRefused(attempt, "no answer"))
            case "pause":
                w.feed(StateChanged(CampaignState.PAUSED))
            case "resume":
                w.feed(StateChanged(CampaignState.RUNNING))
            case "assign":  # agents log in and out: a subset of AGENTS by the index's bits
                w.feed(AgentsAssigned(
                    tuple(agent for bit, agent in enumerate(AGENTS) if index >> bit & 1)))
            case "settings":
                pacing = PacingSettings(mode=MODES[index % len(MODES)], line_cap=LINE_CAP,
                                        cps_cap=CPS_CAP, ring_timeout=15.0)
                w.feed(SettingsChanged(
                    MachineSettings(pacing, 6.0 * share, DISPOSITIONS if index % 2 else {})))
            case "key" if (leg := w.pick(sorted(w.m.agents), index)) is not None:
                w.feed(AgentKeyPressed(w.m.agents[leg].channel_id, "1" if share < 0.5 else "9"))

    # every launch window of one second held the CPS cap
    for start in w.launches:
        assert sum(1 for t in w.launches if start <= t < start + 1.0) <= math.floor(CPS_CAP)
    # drain: bridges resolve, every call hangs up, every timer fires
    for attempt in list(w.connects):
        w.connects.pop(attempt)
        w.bridged.add(attempt)
        w.feed(Bridged(attempt))
    for attempt in list(w.m.attempts):
        w.feed(Hangup(attempt, 16))
    w.advance(3600.0)
    assert w.m.attempts == {}
    # every attempt ended in exactly one result
    assert set(w.results) == w.claimed and set(w.results.values()) <= {1}
    # an abandon was counted exactly for the live answers that were still there when their
    # grace ended with no agent given to them (one that hung up at that very instant may go
    # either way: the two events are simultaneous)
    deadline = {a: answered + ABANDON_GRACE_SECONDS for a, answered in w.answered_at.items()}
    at_the_instant = {a for a in deadline if w.ended_at[a] == deadline[a]}
    expected = {
        attempt for attempt in deadline
        if w.ended_at[attempt] > deadline[attempt]
        and not w.had_agent_at(attempt, deadline[attempt])
    }
    assert set(w.safe_harbored) - at_the_instant == expected
    event(f"bridged: {bool(w.bridged)}, abandoned: {bool(expected)}, results: {len(w.results) > 3}")
    event(f"disposed: {bool(w.disposed)}")
    lives, abandons = w.m.stats.window_totals(w.now)[720.0]
    assert abandons == len(w.safe_harbored) and lives == abandons + len(w.bridged)
