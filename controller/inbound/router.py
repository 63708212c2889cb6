"""The inbound router: decides where each new call goes, watches waiting callers, records outcomes.

Flow (see the dialplan in ``dialplans/inbound.conf``):

1. A DID call enters our Stasis app with ``args = ["inbound", DID]``. ``route_call`` (pure)
   decides from the schedule, the number and the live queue snapshots; the router continues the
   channel into ``callctl-queue,<queue>,1`` or to a destination's context, and only then writes
   the arrival row, so the store is never on the caller's critical path.
2. While callers wait, ``evaluate`` (pure) is re-run on every change of their queue and on a
   ticker (twice a second, so a rule fires well within one second of its threshold). When a rule
   fires, the caller is moved with an AMI Redirect (it stays in the dialplan, so it keeps hearing
   ringback or music on hold).
3. AMI queue events and the caller's Hangup give the outcome; each call gets exactly one final
   outcome row in the store: answered, abandoned, overflowed, after_hours, failed, callback,
   or node_lost when its node was lost with the call open (``controller/nodes``).

Callers who entered a queue without us (controller down, static fallback) are adopted from the
live model when we see them, so they are watched and recorded too.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from controller.asterisk.ami import AmiClient, AmiError
from controller.asterisk.ari import AriClient, AriError
from controller.asterisk.events import (
    AgentComplete,
    AgentConnect,
    AmiEvent,
    AriChannel,
    ChannelEvent,
    Hangup,
    QueueCallerAbandon,
    QueueCallerJoin,
    StasisStart,
)
from controller.callbacks.service import is_placeholder
from controller.inbound.asterisk_conf import dialplan_location
from controller.inbound.config import InboundConfig
from controller.inbound.destinations import AnyDestination, QueueDestination
from controller.inbound.hours import Override
from controller.inbound.repository import InboundCallRecord, InboundCallRepository
from controller.inbound.rules import Divert, Enqueue, Overflow, Reject, evaluate, route_call
from controller.inbound.snapshot import AgentSnapshot, QueueSnapshot, WaitingCaller
from controller.logs import get_logger
from controller.metrics.registry import Metrics
from controller.pjsip import agent_of_interface
from controller.recording.policy import CallFacts
from controller.recording.recorder import Recorder
from controller.state.model import AgentState, LiveModel
from controller.store.backlog import WriteBacklog
from controller.store.base import Database
from controller.tasks import TaskSet

log = get_logger("inbound")

TICK_S = 0.5
HANDLE_TIMES_KEPT = 50


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


@dataclass
class InboundCall:
    call_id: str
    channel: str
    did: str
    caller: str
    arrived_at: float
    queue: str | None = None
    queue_joined_at: float | None = None
    queued_at: float | None = None
    answered_at: float | None = None
    outcome: str | None = None
    agent_id: str | None = None
    rule: str | None = None
    destination: str | None = None
    reason: str | None = None
    moving: bool = False
    node: str | None = None

    def stored(self, ended_at: float | None = None) -> InboundCallRecord:
        """The call as the store keeps it."""
        return InboundCallRecord(
            call_id=self.call_id,
            channel=self.channel,
            did=self.did,
            caller=self.caller,
            arrived_at=datetime.fromtimestamp(self.arrived_at, UTC),
            queue=self.queue,
            queued_at=_moment(self.queued_at),
            answered_at=_moment(self.answered_at),
            ended_at=_moment(ended_at),
            outcome=self.outcome,
            agent_id=self.agent_id,
            rule=self.rule,
            destination=self.destination,
            reason=self.reason,
            node=self.node,
        )


@dataclass
class _QueueWatch:
    no_agent_since: float | None = None
    handle_times: deque[float] = field(default_factory=lambda: deque(maxlen=HANDLE_TIMES_KEPT))


class InboundRouter:
    def __init__(
        self,
        config: InboundConfig,
        ami: AmiClient,
        ari: AriClient,
        model: LiveModel,
        store: Database,
        metrics: Metrics,
        recorder: Recorder,
        writes: WriteBacklog,
        node: str,
        clock: Callable[[], float] = time.time,
        overrides: Mapping[str, Override] | None = None,
    ) -> None:
        self._config = config
        self._overrides: Mapping[str, Override] = overrides if overrides is not None else {}
        self._writes = writes  # a call's rows, written late if the store is down meanwhile
        self._ami = ami
        self._ari = ari
        self._model = model
        self._calls = InboundCallRepository(store)
        self._metrics = metrics
        self._recorder = recorder
        self._clock = clock
        self._node = node  # every call's row names it
        self.calls: dict[str, InboundCall] = {}
        # calls ended with their lost node, which the model still lists until the next resync:
        # never adopted again
        self._lost_with_node: set[str] = set()
        self._watch = {name: _QueueWatch() for name in config.queues}
        self._tasks = TaskSet("inbound")
        self.routing_latency_s: deque[float] = deque(maxlen=10_000)
        model.subscribe(self._on_model_change)

    # -- arrival (ARI) --------------------------------------------------------------------

    def on_stasis_start(self, event: StasisStart) -> None:
        channel = event.channel
        did = event.args[1] if len(event.args) > 1 else channel.dialplan_exten
        self._tasks.spawn(self._route(channel, did, time.perf_counter()))

    async def _route(self, channel: AriChannel, did: str, started: float) -> None:
        now = self._clock()
        call = InboundCall(
            call_id=channel.id,
            channel=channel.name,
            did=did,
            caller=channel.caller_number,
            arrived_at=now,
            node=self._node,
        )
        self.calls[call.call_id] = call
        moment = datetime.fromtimestamp(now, UTC)
        decision = route_call(
            self._config, did, call.caller, moment, self.snapshot_of, self._overrides
        )
        try:
            await self._carry_out(call, decision)
        except AriError as error:
            # the caller hung up while we decided (404) or Asterisk refused: record, never raise
            call.outcome, call.reason = "failed", f"routing: {error}"
            log.warning("call.route_failed", call_id=call.call_id, did=did, error=str(error))
        self.routing_latency_s.append(time.perf_counter() - started)
        await self._store_arrival(call)

    async def _carry_out(self, call: InboundCall, decision: Enqueue | Divert | Reject) -> None:
        for step in getattr(decision, "overflows", ()):
            self._note_overflow(call, step)
        match decision:
            case Enqueue(queue=queue, priority=priority, after_hours=after_hours):
                call.queue = queue
                if priority:
                    await self._ari.set_variable(call.call_id, "QUEUE_PRIO", str(priority))
                await self._ari.continue_in_dialplan(call.call_id, "callctl-queue", queue)
                log.info(
                    "call.routed",
                    call_id=call.call_id,
                    did=call.did,
                    queue=queue,
                    priority=priority,
                    after_hours=after_hours,
                )
            case Divert(destination=destination, reason=reason, overflows=overflows):
                call.outcome = "after_hours" if reason == "after_hours" else "overflowed"
                call.destination = str(destination)
                # the queue the call was meant for, so per-queue counts of today include it
                call.queue = overflows[-1].queue if overflows else self._route_queue(call.did)
                if reason == "after_hours":
                    self._metrics.call_outcome(call.queue or "", "after_hours", 0.0)
                await self._send(call, destination, via_ari=True)
                log.info(
                    "call.diverted",
                    call_id=call.call_id,
                    did=call.did,
                    reason=reason,
                    destination=str(destination),
                )
            case Reject(reason=reason):
                call.outcome, call.reason = "failed", reason
                await self._ari.hangup(call.call_id, "unallocated")
                log.info("call.rejected", call_id=call.call_id, did=call.did, reason=reason)

    def arrival_of(self, call_id: str) -> float | None:
        """When a call we know arrived (its first arrival, before any queue or overflow)."""
        call = self.calls.get(call_id)
        return call.arrived_at if call is not None else None

    def left_for_callback(self, call_id: str) -> None:
        """The caller booked a callback: its call ends ``callback``, not abandoned (the callback
        itself is counted by the callback service)."""
        call = self.calls.get(call_id)
        if call is None or call.outcome is not None:
            return
        call.outcome = "callback"
        if call.queue:
            self._metrics.call_outcome(call.queue, "callback", self._waited(call, call.queue))

    def _route_queue(self, did: str) -> str | None:
        route = self._config.numbers.get(did)
        return route.queue if route else None

    async def _send(self, call: InboundCall, destination: AnyDestination, via_ari: bool) -> None:
        context, exten, variables = dialplan_location(destination, self._config.external_trunk)
        if via_ari:
            for name, value in variables.items():
                await self._ari.set_variable(call.call_id, name, value)
            await self._ari.continue_in_dialplan(call.call_id, context, exten)
            return
        for name, value in variables.items():
            await self._ami.action("Setvar", Channel=call.channel, Variable=name, Value=value)
        await self._ami.redirect(call.channel, context, exten)

    def _note_overflow(self, call: InboundCall, step: Overflow) -> None:
        call.rule, call.destination = step.rule_id, str(step.destination)
        self._metrics.call_outcome(step.queue, "overflowed", self._waited(call, step.queue))
        log.info(
            "call.overflowed",
            call_id=call.call_id,
            queue=step.queue,
            rule=step.rule_id,
            destination=str(step.destination),
            reason=step.reason,
        )

    # -- snapshots for the pure rules -----------------------------------------------------

    def snapshot_of(self, queue_name: str) -> QueueSnapshot:
        queue = self._model.queues.get(queue_name)
        watch = self._watch.setdefault(queue_name, _QueueWatch())
        now = self._clock()
        if queue is None:
            return QueueSnapshot(recent_handle_times=tuple(watch.handle_times))
        agents = tuple(
            AgentSnapshot(
                agent_id=member.name or member.interface,
                state=state,
                since=datetime.fromtimestamp(member.state_since, UTC),
            )
            for member in queue.members.values()
            if (state := member.state(now)) is not AgentState.UNAVAILABLE
        )
        callers = tuple(
            WaitingCaller(
                call_id=c.uniqueid,
                joined_at=datetime.fromtimestamp(c.joined_at, UTC),
                position=c.position,
            )
            for c in queue.callers.values()
        )
        since = watch.no_agent_since
        return QueueSnapshot(
            callers=callers,
            agents=agents,
            no_agent_available_since=None if since is None else datetime.fromtimestamp(since, UTC),
            recent_handle_times=tuple(watch.handle_times),
        )

    # -- waiting callers ------------------------------------------------------------------

    def _on_model_change(self, what: str, key: str) -> None:
        if what in ("caller_join", "member", "snapshot") and (
            key in self._config.queues or not key
        ):
            self._check_queues([key] if key else list(self._config.queues))

    async def run(self) -> None:
        """The ticker: re-check every waiting caller at least twice a second."""
        while True:
            await asyncio.sleep(TICK_S)
            self._check_queues(list(self._config.queues))

    def _check_queues(self, names: list[str]) -> None:
        now = self._clock()
        moment = datetime.fromtimestamp(now, UTC)
        for name in names:
            queue = self._model.queues.get(name)
            watch = self._watch.setdefault(name, _QueueWatch())
            if queue is None:
                continue
            available = queue.agents_by_state(now)[AgentState.AVAILABLE]
            if available:
                watch.no_agent_since = None
            elif watch.no_agent_since is None:
                watch.no_agent_since = now
            if not queue.callers:
                continue
            snapshot = self.snapshot_of(name)
            queue_cfg = self._config.queues[name]
            for caller in snapshot.callers:
                if is_placeholder(caller.call_id):  # a callback's: it waits, no rule moves it
                    continue
                call = self._adopt(caller.call_id, name)
                if call is None or call.moving:
                    continue
                decision = evaluate(name, queue_cfg, snapshot, caller, moment)
                if isinstance(decision, Overflow):
                    call.moving = True
                    self._tasks.spawn(self._overflow(call, decision))

    def _adopt(self, call_id: str, queue_name: str) -> InboundCall | None:
        """The call record of a waiting caller; created for callers we did not route."""
        call = self.calls.get(call_id)
        if call is not None or call_id in self._lost_with_node:
            return call
        caller = self._model.queues[queue_name].callers.get(call_id)
        if caller is None:
            return None
        call = InboundCall(
            call_id=call_id,
            channel=caller.channel,
            did="",
            caller=caller.caller_num,
            arrived_at=caller.joined_at,
            queue=queue_name,
            queue_joined_at=caller.joined_at,
            queued_at=caller.joined_at,
            node=self._node,
        )
        self.calls[call_id] = call
        self._tasks.spawn(self._store_arrival(call, adopted=True))
        log.info("call.adopted", call_id=call_id, queue=queue_name)
        return call

    def follow_stored(self, record: InboundCallRecord) -> None:
        """Follow again a call an earlier run of this controller stored as open and whose
        channel is still up (a restart while it waited or talked), so its answer and hangup end
        it as they would have. What happened before this run is the row's (the number called,
        the arrival, the first queue, a rule's move, an agent's answer); a caller adopted from
        its queue meanwhile keeps what this run saw since."""
        if record.call_id in self._lost_with_node:
            return
        call = self.calls.setdefault(record.call_id, InboundCall(
            call_id=record.call_id, channel=record.channel, did="", caller=record.caller,
            arrived_at=record.arrived_at.timestamp(), queue=record.queue,
            queue_joined_at=_seconds(record.queued_at), node=self._node,
        ))
        call.did, call.arrived_at = record.did, record.arrived_at.timestamp()
        call.queued_at = _seconds(record.queued_at) or call.queued_at
        call.rule = call.rule or record.rule
        call.destination = call.destination or record.destination
        if call.answered_at is None and record.answered_at is not None:
            call.answered_at, call.agent_id = _seconds(record.answered_at), record.agent_id
        # an answer is counted when it happens: the outcome written at the end says what it was
        call.outcome = call.outcome or record.outcome or ("answered" if call.answered_at else None)
        log.info("call.followed_again", call_id=call.call_id, queue=call.queue,
                 outcome=call.outcome, agent_id=call.agent_id)

    async def _overflow(self, call: InboundCall, step: Overflow) -> None:
        self._note_overflow(call, step)
        try:
            await self._send(call, step.destination, via_ari=False)
        except AmiError as error:
            call.moving = False  # still waiting: the next tick tries again
            log.warning("call.overflow_failed", call_id=call.call_id, error=str(error))
            return
        if isinstance(step.destination, QueueDestination):
            call.queue = step.destination.queue
        else:
            call.outcome = "overflowed"
        await self._writes.write(
            "inbound overflow",
            lambda: self._calls.set_overflow(call.call_id, call.rule, call.destination, call.queue),
            call_id=call.call_id,
        )

    # -- outcomes (AMI) -------------------------------------------------------------------

    def on_ami_event(self, event: AmiEvent) -> None:
        if isinstance(event, AgentComplete):
            self._handle_time(event)
        if not isinstance(event, ChannelEvent):
            return
        call = self.calls.get(event.uniqueid)
        if call is None:
            return
        now = self._clock()
        match event:
            case QueueCallerJoin(queue=queue):
                first_queue = call.queued_at is None
                call.queue, call.queue_joined_at, call.moving = queue, now, False
                call.queued_at = call.queued_at or now
                if first_queue:
                    self._tasks.spawn(self._record(call))
            case AgentConnect(queue=queue):
                call.outcome, call.answered_at = "answered", now
                # the agent by its phone, as everywhere else: a member added without a name
                # (the Asterisk CLI) is named by its interface
                call.agent_id = (agent_of_interface(event.interface) or event.member_name
                                 or event.interface)
                self._metrics.call_outcome(queue, "answered", self._waited(call, queue))
                log.info(
                    "call.answered", call_id=call.call_id, queue=queue, agent_id=call.agent_id
                )
                self._tasks.spawn(self._recorder.set_agent(call.call_id, call.agent_id))
                self._tasks.spawn(self._writes.write(
                    "inbound call answered", partial(self._calls.set_answered, call.stored()),
                    call_id=call.call_id))
            case QueueCallerAbandon(queue=queue) if call.outcome is None:
                # counted here: ``_finish`` only counts outcomes it decides itself
                call.outcome = "abandoned"
                self._metrics.call_outcome(queue, "abandoned", self._waited(call, queue))
            case Hangup():
                self._tasks.spawn(self._finish(call, now))

    async def _record(self, call: InboundCall) -> None:
        """Start the queue's recording policy on the caller's channel (first queue only)."""
        facts = CallFacts(
            call_id=call.call_id,
            direction="inbound",
            started_at=datetime.fromtimestamp(call.arrived_at, UTC),
            queue=call.queue,
        )
        await self._recorder.start(facts, call.channel, caller=call.caller, callee=call.did)

    def _handle_time(self, event: AgentComplete) -> None:
        queue = event.queue
        wrapup = self._model.queues[queue].wrapup_s if queue in self._model.queues else 0.0
        seconds = event.talk_time_s + wrapup
        self._watch.setdefault(queue, _QueueWatch()).handle_times.append(seconds)
        self._metrics.handle_time(queue, seconds)

    def _waited(self, call: InboundCall, queue: str) -> float:
        start = call.queue_joined_at if call.queue == queue and call.queue_joined_at else None
        return max(0.0, self._clock() - (start or call.arrived_at))

    async def _finish(self, call: InboundCall, now: float) -> None:
        if self.calls.pop(call.call_id, None) is None:
            return
        if call.outcome is None:
            if call.queue is not None and call.queued_at is not None:
                call.outcome = "abandoned"
                self._metrics.call_outcome(call.queue, "abandoned", self._waited(call, call.queue))
            else:
                call.outcome, call.reason = "failed", call.reason or "hung up before a queue"
                if call.queue:
                    self._metrics.call_outcome(call.queue, "failed", 0.0)
        log.info(
            "call.ended",
            call_id=call.call_id,
            outcome=call.outcome,
            queue=call.queue,
            agent_id=call.agent_id,
            duration_s=round(now - call.arrived_at, 2),
        )
        # the Hangup can overtake the arrival row's write: save_ended writes the row either way
        await self._writes.write(
            "inbound call ended", partial(self._calls.save_ended, call.stored(ended_at=now)),
            call_id=call.call_id,
        )

    # -- the node lost (controller/nodes) ------------------------------------------------

    def end_with_node(self, reason: str, live: Collection[str] = ()) -> set[str]:
        """The node is lost with the calls on it: every open call whose channel is not in
        ``live`` ends now, ``node_lost`` unless it had an outcome already (answered, diverted:
        that stays, its end is the loss). Returns the ids of the calls ended."""
        return self._end_gone(live, partial(self._end_lost, reason=reason))

    def end_missed_hangups(self, live: Collection[str]) -> set[str]:
        """The connection is back to the same Asterisk: calls whose channels are not in
        ``live`` hung up while nobody listened, and end as their Hangup would have ended them."""
        self._lost_with_node.clear()  # the model was just rebuilt: it lists none of them
        return self._end_gone(live, self._finish)

    def _end_gone(
        self, live: Collection[str], end: Callable[[InboundCall, float], Coroutine[Any, Any, None]]
    ) -> set[str]:
        now = self._clock()
        gone = {call_id for call_id in self.calls if call_id not in live}
        for call_id in gone:
            self._tasks.spawn(end(self.calls[call_id], now))
        return gone

    async def _end_lost(self, call: InboundCall, now: float, reason: str) -> None:
        if self.calls.pop(call.call_id, None) is None:
            return
        self._lost_with_node.add(call.call_id)
        call.reason = reason
        if call.outcome is None:
            call.outcome = "node_lost"
            if call.queue:
                self._metrics.call_outcome(call.queue, "node_lost", self._waited(call, call.queue))
        log.warning(
            "call.node_lost",
            call_id=call.call_id,
            node=self._node,
            outcome=call.outcome,
            queue=call.queue,
            agent_id=call.agent_id,
            reason=reason,
            duration_s=round(now - call.arrived_at, 2),
        )
        await self._writes.write(
            "inbound call lost with its node",
            partial(self._calls.save_ended, call.stored(ended_at=now)),
            call_id=call.call_id,
        )

    async def _store_arrival(self, call: InboundCall, adopted: bool = False) -> None:
        record = call.stored()
        await self._writes.write(
            "inbound call arrived",
            partial(self._calls.add_arrival, replace(record, outcome=None) if adopted else record),
            call_id=call.call_id,
        )
