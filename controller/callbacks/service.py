"""The callback service: books callbacks, keeps their place in the queue, calls back once.

Flow (dialplan in ``dialplans/callbacks.conf``, per-queue parts rendered by
``inbound/asterisk_conf.py``):

1. A waiting caller presses 1 during the offer; app_queue sends it to ``callctl-callback-offer``,
   which enters Stasis (``callback``, queue, step). The caller id is used when it is a valid
   number of an allowed region; otherwise the caller keys one in (``entered``), hears it read
   back and confirms it (``confirmed``); a bad entry is refused with a prompt and never stored.
   The booking is committed (``CallbackRepository.book``) before the caller hears it is booked.
2. While the queue's schedule is open, each pending callback has a placeholder in the queue: a
   Local channel whose queue side runs ``Queue()`` at the caller's place (callers who arrived
   earlier are ahead of it), so it reaches an agent when the caller would have.
3. The agent answers the placeholder (its Stasis side enters ``callback-agent``), hears who is
   called back; the attempt is committed, then the customer is originated with the attempt id
   as channel id. A customer who answers hears the announcement and (if required) presses 1,
   then enters ``callback-customer`` and is bridged to the agent. Not reached: retried after
   the gap, then ``unreached``.
4. After a restart the pending callbacks are settled against Asterisk: a live attempt is
   adopted, an ended one is read from the AstDB ledger, one that left no trace was never dialed
   (and is dialed later, once). So a crash never dials a callback twice.
5. Several controllers on one store: a pending callback is its owner's alone (the booking
   controller, its ``node.name``); only the owner places it and dials it. The ticker renews
   the leases of its callbacks and takes over those of a controller that is gone (its leases
   ran out: ``CallbackRepository.take_over``); a callback it finds it no longer owns (its lease
   ran out while it could not renew, and another took it) it forgets, hanging up what it had
   of it in its Asterisk. A restarted controller hangs up any placeholder of a callback it does
   not own, so one callback never has two placeholders for long, nor two attempts at once.

Every transition comes from the pure machine (``machine.step``); this service stores the new
state first, then carries out the machine's commands.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from controller.asterisk.ami import AmiClient, AmiError
from controller.asterisk.ari import AriClient, AriError
from controller.asterisk.events import AmiEvent, Hangup, StasisStart
from controller.callbacks.machine import (
    PENDING,
    AgentAnswered,
    AttemptEnded,
    Callback,
    Cancel,
    Dial,
    Event,
    Finished,
    HangUpAttempt,
    NotDialed,
    PlaceholderGone,
    PlaceInQueue,
    State,
    TakenOver,
    Tick,
    Withdraw,
    step,
)
from controller.callbacks.number import callback_number
from controller.callbacks.repository import LEASE_RENEW_EVERY, CallbackRepository
from controller.dialer.ledger import AstDbLedger
from controller.faults import crash_point
from controller.inbound.config import InboundConfig
from controller.inbound.hours import Override, is_open
from controller.logs import get_logger
from controller.metrics.registry import Metrics
from controller.pjsip import trunk_dial_string
from controller.state.model import LiveModel
from controller.store.base import Database, StoreError
from controller.tasks import TaskSet

log = get_logger("callbacks")

TICK_S = 1.0
LEDGER_FAMILY = "callctl_callback"
PLACEHOLDER_PREFIX = "cbw-"
QUEUE_SIDE_PREFIX = "cbq-"
ENTRY_COUNT_VARIABLE = "CALLCTL_CALLBACK_REFUSED"


def queue_side(placeholder_id: str) -> str:
    """The channel id of a placeholder's queue side (the Local channel's ``;2``)."""
    return QUEUE_SIDE_PREFIX + placeholder_id.removeprefix(PLACEHOLDER_PREFIX)


def is_placeholder(channel_id: str) -> bool:
    """Whether a channel waiting in a queue is a callback's placeholder, not a caller."""
    return channel_id.startswith(QUEUE_SIDE_PREFIX)


def _dialing(callback: Callback, attempt_id: str) -> bool:
    """Whether ``attempt_id`` is the callback's attempt being dialed now."""
    return callback.state is State.DIALING and callback.attempt_id == attempt_id


def _bridge(attempt_id: str) -> str:
    """The bridge of the attempt ``attempt_id``: the agent waits in it for the customer."""
    return f"cbb-{attempt_id}"


def _announcement(attempt_id: str) -> str:
    """The playback id of what the agent hears before the attempt ``attempt_id``."""
    return f"cba-{attempt_id}"


class Callers(Protocol):
    """What the service asks of the inbound router about the calls that book callbacks."""

    def arrival_of(self, call_id: str) -> float | None: ...

    def left_for_callback(self, call_id: str) -> None: ...


@dataclass
class _Bridged:
    callback_id: str
    placeholder_id: str
    attempt_id: str
    bridge_id: str


class CallbackService:
    def __init__(
        self,
        config: InboundConfig,
        ami: AmiClient,
        ari: AriClient,
        model: LiveModel,
        store: Database,
        metrics: Metrics,
        callers: Callers,
        owner: str,
        clock: Callable[[], float] = time.time,
        overrides: Mapping[str, Override] | None = None,
    ) -> None:
        self._config = config
        self._owner = owner  # this controller's name on the callbacks it owns
        self._overrides: Mapping[str, Override] = overrides if overrides is not None else {}
        self.ticks = 0  # ticker rounds done over the pending callbacks (tests wait on it)
        self._ami = ami
        self._ari = ari
        self._model = model
        self._repo = CallbackRepository(store)
        self._ledger = AstDbLedger(ami, LEDGER_FAMILY)
        self._metrics = metrics
        self._callers = callers
        self._clock = clock
        self.callbacks: dict[str, Callback] = {}  # the pending ones, by id
        self._bridged: dict[str, _Bridged] = {}  # by either channel id
        self._lock = asyncio.Lock()
        self._loaded = asyncio.Event()
        self._renewed_at: datetime | None = None  # the last renewal of our leases
        self._tasks = TaskSet("callbacks")

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks.spawn(coro)

    # -- transitions ----------------------------------------------------------------------

    async def _apply(self, callback: Callback, event: Event) -> Callback:
        """Feed ``event``; store the new state, then carry out the commands."""
        queue = self._config.queues[callback.queue].callback
        assert queue is not None
        transition = step(callback, event, queue)
        if not transition.changed:
            return callback
        after = transition.callback
        now = self._now()
        if not await self._repo.save(after, now, self._owner):
            await self._lose(callback)
            return callback
        if isinstance(event, AttemptEnded):  # stored: the attempt's AstDB record is done with
            self._spawn(self._forget_attempt(callback.attempt_id))
        if after.state in PENDING:
            self.callbacks[after.callback_id] = after
        else:
            self.callbacks.pop(after.callback_id, None)
        self._count_pending(after.queue)
        log.info(
            "callback.state_changed",
            callback_id=after.callback_id,
            queue=after.queue,
            state=after.state.value,
            previous=callback.state.value,
            attempts=after.attempts,
            cause=type(event).__name__,
        )
        for command in transition.commands:
            match command:
                case PlaceInQueue():
                    await self._place(after)
                case Withdraw(channel_id=channel_id):
                    await self._hang_up(channel_id)
                case Dial(attempt_id=attempt_id):
                    await self._dial(after, attempt_id)
                case HangUpAttempt(attempt_id=attempt_id):
                    await self._hang_up(attempt_id)
                case Finished(outcome=outcome):
                    waited = (now - after.arrived_at).total_seconds()
                    self._metrics.callback_finished(after.queue, outcome.value, waited)
        return after

    async def _feed(
        self, callback_id: str, make: Callable[[Callback], Event | None]
    ) -> Callback | None:
        """Feed the event ``make`` returns for the pending callback (None: nothing to feed);
        the callback after it, None when it was not pending."""
        async with self._lock:
            callback = self.callbacks.get(callback_id)
            if callback is None:
                return None
            event = make(callback)
            return callback if event is None else await self._apply(callback, event)

    async def _lose(self, callback: Callback) -> None:
        """Another controller took ``callback`` over: forget it, and hang up what this one has
        of it in its Asterisk (the new owner places and dials its own)."""
        log.warning("callback.lost", callback_id=callback.callback_id, state=callback.state.value)
        self.callbacks.pop(callback.callback_id, None)
        self._count_pending(callback.queue)
        if callback.state is State.DIALING:
            await self._hang_up(callback.attempt_id)
        if callback.state in (State.QUEUED, State.DIALING):
            await self._hang_up(callback.placeholder_id)

    def _count_pending(self, queue: str) -> None:
        count = sum(1 for c in self.callbacks.values() if c.queue == queue)
        self._metrics.callbacks_pending(queue, count)

    # -- booking (the caller's Stasis visits) ---------------------------------------------

    def on_booking_stasis(self, event: StasisStart) -> None:
        self._spawn(self._booking(event))

    async def _booking(self, event: StasisStart) -> None:
        channel = event.channel
        queue, step_name = [*event.args[1:3], "", ""][:2]
        settings = self._config.queues.get(queue)
        if settings is None or settings.callback is None:
            log.warning("callback.unknown_queue", call_id=channel.id, queue=queue)
            await self._continue(channel.id, "callctl-callback-goodbye")
            return
        regions = self._config.callback_regions(queue)
        try:
            if step_name == "offer":
                number = (
                    None
                    if settings.callback.always_ask_number
                    else callback_number(channel.caller_number, regions)
                )
                if number is None:
                    log.info("callback.number_asked", call_id=channel.id, queue=queue)
                    await self._continue(channel.id, "callctl-callback-entry")
                    return
                await self._book(channel.id, queue, number)
                return
            digits = await self._variable(channel.id, "CALLCTL_CALLBACK_DIGITS")
            number = callback_number(digits, regions)
            if number is None:
                await self._refuse(channel.id, queue, digits, settings.callback.entry_attempts)
            elif step_name == "entered":
                log.info("callback.number_entered", call_id=channel.id, queue=queue)
                await self._continue(channel.id, "callctl-callback-confirm")
            else:
                await self._book(channel.id, queue, number)
        except (AriError, StoreError) as error:  # the caller hung up, or the store failed
            log.warning(
                "callback.booking_failed", call_id=channel.id, queue=queue, error=str(error)
            )
            await self._hang_up(channel.id)

    async def _refuse(self, channel_id: str, queue: str, digits: str, allowed: int) -> None:
        """A keyed number that cannot be called back: a prompt and another try, never stored."""
        refused = int(await self._variable(channel_id, ENTRY_COUNT_VARIABLE) or 0) + 1
        log.info(
            "callback.entry_refused",
            call_id=channel_id,
            queue=queue,
            digits=len(digits),
            refused=refused,
        )
        if refused >= allowed:
            await self._continue(channel_id, "callctl-callback-goodbye")
            return
        await self._ari.set_variable(channel_id, ENTRY_COUNT_VARIABLE, str(refused))
        await self._continue(channel_id, "callctl-callback-refused")

    async def _book(self, channel_id: str, queue: str, number: str) -> None:
        if await self._repo.on_dnc(number):
            log.info("callback.refused_dnc", call_id=channel_id, queue=queue)
            await self._continue(channel_id, "callctl-callback-goodbye")
            return
        now = self._now()
        arrived = self._callers.arrival_of(channel_id)
        callback = Callback(
            callback_id=uuid.uuid4().hex[:12],
            queue=queue,
            phone=number,
            arrived_at=datetime.fromtimestamp(arrived, UTC) if arrived else now,
            booked_at=now,
        )
        booking = await self._repo.book(callback, channel_id, self._owner)
        self._callers.left_for_callback(channel_id)
        callback = booking.callback
        log.info(
            "callback.booked" if booking.new else "callback.already_booked",
            callback_id=callback.callback_id,
            call_id=channel_id,
            queue=queue,
        )
        if booking.new:
            async with self._lock:
                self.callbacks[callback.callback_id] = callback
                self._count_pending(queue)
                await self._apply(callback, self._tick_of(callback))
        await self._ari.set_variable(channel_id, "CALLCTL_CALLBACK_DIGITS", number.lstrip("+"))
        await self._continue(channel_id, "callctl-callback-booked")

    # -- the placeholder ------------------------------------------------------------------

    def _position(self, callback: Callback) -> int:
        """1 + the callers (and placeholders) of the queue who arrived before the caller."""
        queue = self._model.queues.get(callback.queue)
        if queue is None:
            return 1
        ahead = 0
        placeholders = {queue_side(c.placeholder_id): c for c in self.callbacks.values()}
        for caller in queue.callers.values():
            other = placeholders.get(caller.uniqueid)
            arrived = (
                other.arrived_at.timestamp()
                if other is not None
                else self._callers.arrival_of(caller.uniqueid) or caller.joined_at
            )
            if arrived < callback.arrived_at.timestamp():
                ahead += 1
        return ahead + 1

    async def _place(self, callback: Callback) -> None:
        placeholder = callback.placeholder_id
        position = self._position(callback)
        try:
            await self._ari.request(
                "POST",
                "/channels",
                {
                    "endpoint": f"Local/{callback.queue}@callctl-callback-wait/n",
                    "app": self._ari.app,
                    "appArgs": f"callback-agent,{callback.callback_id}",
                    "channelId": placeholder,
                    "otherChannelId": queue_side(placeholder),
                    "callerId": f'"Callback" <{callback.phone}>',
                    "timeout": -1,
                },
                body={"variables": {"CALLCTL_CALLBACK_POSITION": str(position)}},
            )
        except AriError as error:  # the next tick places it again
            log.warning("callback.place_failed", callback_id=callback.callback_id, error=str(error))
            self._spawn(self._feed(callback.callback_id, lambda c: PlaceholderGone(self._now())))
            return
        log.info(
            "callback.placed",
            callback_id=callback.callback_id,
            queue=callback.queue,
            position=position,
        )

    # -- the agent and the customer -------------------------------------------------------

    def on_agent_stasis(self, event: StasisStart) -> None:
        callback_id = event.args[1] if len(event.args) > 1 else ""
        channel_id = event.channel.id

        def answered(callback: Callback) -> Event | None:
            if callback.state is State.QUEUED and callback.placeholder_id == channel_id:
                return AgentAnswered(self._now(), agent=event.channel.name)
            return None

        async def take() -> None:
            await self._feed(callback_id, answered)
            callback = self.callbacks.get(callback_id)
            if callback is None or callback.placeholder_id != channel_id:
                log.info("callback.stale_placeholder", channel=channel_id)
                await self._hang_up(channel_id)

        self._spawn(take())

    async def _dial(self, callback: Callback, attempt_id: str) -> None:
        settings = self._config.queues[callback.queue].callback
        assert settings is not None
        # The agent waits in the attempt's bridge and hears the announcement there: a channel
        # playing media itself takes no bridge until the playback ends (addChannel hangs).
        bridge_id = _bridge(attempt_id)
        try:
            await self._ari.request("POST", f"/bridges/{bridge_id}", {"type": "mixing"})
            await self._ari.request(
                "POST", f"/bridges/{bridge_id}/addChannel", {"channel": callback.placeholder_id}
            )
            await self._ari.request(
                "POST",
                f"/bridges/{bridge_id}/play/{_announcement(attempt_id)}",
                {"media": f"sound:calling,digits:{callback.phone.lstrip('+')}"},
            )
        except AriError as error:  # the agent hung up: its Hangup ends the attempt
            log.info("callback.announce_failed", callback_id=callback.callback_id, error=str(error))
        variables = {
            "CALLCTL_CALLBACK": callback.callback_id,
            "CALLCTL_CALLBACK_ATTEMPT": attempt_id,
            "CALLCTL_CALLBACK_SOUND": settings.announce_sound,
            "CALLCTL_CALLBACK_REQUIRE_KEY": "1" if settings.require_key else "0",
            "CALLCTL_CALLBACK_KEY_TIMEOUT": str(settings.key_timeout),
            "CHANNEL(hangup_handler_push)": "callctl-callback-end\\,s\\,1",
        }
        try:
            await self._ami.originate(
                trunk_dial_string(callback.phone, self._config.external_trunk),
                attempt_id,
                action_id=attempt_id,
                context="callctl-callback-customer",
                exten="s",
                priority=1,
                timeout_s=settings.ring_timeout,
                caller_id=settings.caller_id or None,
                variables=variables,
            )
        except AmiError as error:  # not re-sent: a lost answer may still mean a live call
            log.warning(
                "callback.originate_failed",
                callback_id=callback.callback_id,
                attempt_id=attempt_id,
                error=str(error),
            )
            if attempt_id not in self._model.channels:
                self._spawn(
                    self._feed(
                        callback.callback_id, lambda c: AttemptEnded(self._now(), reached=False)
                    )
                )
            return
        log.info(
            "callback.dialing",
            callback_id=callback.callback_id,
            attempt_id=attempt_id,
            queue=callback.queue,
        )
        crash_point("after_callback_originate", attempt_id=attempt_id)

    def on_customer_stasis(self, event: StasisStart) -> None:
        self._spawn(self._reached(event.args[1] if len(event.args) > 1 else "", event.channel.id))

    async def _reached(self, callback_id: str, attempt_id: str) -> None:
        callback = self.callbacks.get(callback_id)
        if (
            callback is None
            or callback.state is not State.DIALING
            or (callback.attempt_id != attempt_id)
        ):
            log.warning("callback.unknown_customer", channel=attempt_id)
            await self._hang_up(attempt_id)
            return
        # Reached (answered, and pressed 1 if required) is stored first, so a hangup during
        # the bridging cannot count this attempt as unanswered and dial again.
        after = await self._feed(callback_id, lambda c: (
            AttemptEnded(self._now(), reached=True) if _dialing(c, attempt_id) else None
        ))
        if after is None or after.state is not State.ANSWERED:
            log.info("callback.reached_too_late", callback_id=callback_id, attempt_id=attempt_id)
            await self._hang_up(attempt_id)
            return
        bridge_id = _bridge(attempt_id)
        bridged = _Bridged(callback_id, callback.placeholder_id, attempt_id, bridge_id)
        self._bridged[attempt_id] = self._bridged[callback.placeholder_id] = bridged
        try:
            await self._stop_announcement(attempt_id)
            await self._ari.request(
                "POST", f"/bridges/{bridge_id}/addChannel", {"channel": attempt_id}
            )
        except AriError as error:  # one side hung up meanwhile: its Hangup ends the other
            log.warning("callback.bridge_failed", callback_id=callback_id, error=str(error))
            await self._hang_up(attempt_id)
            return
        log.info(
            "callback.bridged", callback_id=callback_id, attempt_id=attempt_id, queue=callback.queue
        )

    # -- AMI: hangups ---------------------------------------------------------------------

    def on_ami_event(self, event: AmiEvent) -> None:
        if not isinstance(event, Hangup):
            return
        channel_id = event.uniqueid
        bridged = self._bridged.pop(channel_id, None)
        if bridged is not None:
            other = (
                bridged.placeholder_id if channel_id == bridged.attempt_id else (bridged.attempt_id)
            )
            self._bridged.pop(other, None)
            self._spawn(self._end_bridge(bridged, other))
            return
        for callback in list(self.callbacks.values()):
            if _dialing(callback, channel_id):
                self._spawn(self._drop_bridge(_bridge(channel_id)))
                self._spawn(self._feed(callback.callback_id, lambda c: (
                    AttemptEnded(self._now(), reached=False) if _dialing(c, channel_id) else None
                )))
            elif channel_id == callback.placeholder_id:
                if callback.state is State.QUEUED:
                    self._spawn(
                        self._feed(callback.callback_id, lambda c: PlaceholderGone(self._now()))
                    )
                elif callback.state is State.DIALING:  # the agent left: stop ringing
                    self._spawn(self._hang_up(callback.attempt_id))

    async def _end_bridge(self, bridged: _Bridged, other: str) -> None:
        log.info("callback.ended", callback_id=bridged.callback_id, attempt_id=bridged.attempt_id)
        await self._hang_up(other)
        await self._drop_bridge(bridged.bridge_id)

    async def _drop_bridge(self, bridge_id: str) -> None:
        try:
            await self._ari.request("DELETE", f"/bridges/{bridge_id}")
        except AriError as error:  # gone already
            log.info("callback.bridge_gone", bridge=bridge_id, error=str(error))

    # -- the schedule, cancellation, restart ----------------------------------------------

    def _tick_of(self, callback: Callback) -> Tick:
        settings = self._config.queues[callback.queue].callback
        now = self._now()
        name = settings.schedule if settings else None
        schedule = self._config.schedules.get(name) if name else None
        return Tick(
            now,
            open=schedule is None or is_open(schedule, now, self._overrides.get(name or "")),
        )

    async def run(self) -> None:
        """The ticker: keep our leases, take over lapsed callbacks, then place, carry, expire
        and retry our pending callbacks."""
        while True:
            await asyncio.sleep(TICK_S)
            if not (self._loaded.is_set() and self._ami.connected and self._ari.connected):
                continue
            now = self._now()
            if self._renewed_at is None or now - self._renewed_at >= LEASE_RENEW_EVERY:
                try:
                    async with self._lock:
                        await self._keep_leases(now)
                except StoreError as error:  # the leases last several renewals: next time
                    log.warning("callback.lease_renewal_failed", error=str(error))
            for callback_id in list(self.callbacks):
                try:
                    await self._feed(callback_id, self._tick_of)
                except StoreError as error:
                    log.warning("callback.tick_failed", callback_id=callback_id, error=str(error))
            self.ticks += 1

    async def _keep_leases(self, now: datetime) -> None:
        """Renew our leases, forget the callbacks another controller took over, and take over
        the callbacks whose owner's lease ran out (the lock held)."""
        owned = await self._repo.renew(self._owner, now)
        self._renewed_at = now
        for callback in [c for c in self.callbacks.values() if c.callback_id not in owned]:
            await self._lose(callback)
        for takeover in await self._repo.take_over(self._owner, now):
            callback = takeover.callback
            log.info(
                "callback.taken_over",
                callback_id=callback.callback_id,
                queue=callback.queue,
                state=callback.state.value,
                previous_owner=takeover.previous_owner,
            )
            self.callbacks[callback.callback_id] = callback
            self._count_pending(callback.queue)
            # ours before (a lease of ours ran out unclaimed) or nobody's (a row from before
            # owners): what there is of it is in our Asterisk; another's is out of reach
            mine = takeover.previous_owner in (self._owner, "")
            event = await self._settle(callback) if mine else TakenOver(now)
            if event is not None:
                await self._apply(callback, event)

    async def reconcile(self) -> None:
        """Settle our stored pending callbacks against Asterisk (after every AMI resync) and
        hang up the placeholders of callbacks we do not own."""
        try:
            async with self._lock:
                stored = {c.callback_id: c for c in await self._repo.owned(self._owner)}
                for callback_id, callback in stored.items():
                    callback = self.callbacks.get(callback_id, callback)
                    self.callbacks[callback_id] = callback
                    event = await self._settle(callback)
                    if event is not None:
                        await self._apply(callback, event)
                for queue in {c.queue for c in stored.values()}:
                    self._count_pending(queue)
                await self._keep_leases(self._now())  # before the strays: nobody's are ours
                await self._hang_up_strays()
        except (StoreError, AmiError) as error:  # the next resync tries again
            log.warning("callback.reconcile_failed", error=str(error))
        finally:
            self._loaded.set()

    async def _hang_up_strays(self) -> None:
        """Hang up the placeholders in our Asterisk of callbacks pending with another owner:
        left by a run of ours that died before that controller took them over. (One of an
        answered callback may be its agent talking to the customer: it is left alone.)"""
        for channel_id in list(self._model.channels):
            if not channel_id.startswith(PLACEHOLDER_PREFIX):
                continue
            callback_id = channel_id.removeprefix(PLACEHOLDER_PREFIX).rpartition("-")[0]
            if callback_id in self.callbacks:
                continue
            stored = await self._repo.get(callback_id)
            if stored is not None and stored.state in PENDING:
                log.info("callback.stray_placeholder", channel=channel_id, callback_id=callback_id)
                await self._hang_up(channel_id)

    async def _settle(self, callback: Callback) -> Event | None:
        live = self._model.channels
        now = self._now()
        if callback.state is State.QUEUED and callback.placeholder_id not in live:
            return PlaceholderGone(now)
        if callback.state is not State.DIALING:
            return None
        attempt_id = callback.attempt_id
        if attempt_id in live:
            log.info(
                "callback.attempt_adopted", callback_id=callback.callback_id, attempt_id=attempt_id
            )
            return None
        record = await self._ledger.read(attempt_id)
        if record is None:
            log.info(
                "callback.attempt_not_dialed",
                callback_id=callback.callback_id,
                attempt_id=attempt_id,
            )
            return NotDialed(now)
        log.info(
            "callback.attempt_settled",
            callback_id=callback.callback_id,
            attempt_id=attempt_id,
            seen=record.seen,
            cause=record.cause,
        )
        # a reached customer is stored answered before anything else: a record means the
        # customer never reached Stasis (no answer, busy, or a voicemail that pressed nothing)
        return AttemptEnded(now, reached=False)

    async def cancel(self, callback_id: str) -> Callback | None:
        """Cancel a pending callback; None when there is no such pending callback."""
        async with self._lock:
            callback = self.callbacks.get(callback_id)
            if callback is None:
                return None
            return await self._apply(callback, Cancel(self._now()))

    async def _forget_attempt(self, attempt_id: str) -> None:
        try:
            await self._ledger.delete(attempt_id)
        except AmiError as error:  # a stale record only: its callback has its state
            log.info("callback.ledger_delete_failed", attempt_id=attempt_id, error=str(error))

    # -- small ARI helpers ----------------------------------------------------------------

    async def _stop_announcement(self, attempt_id: str) -> None:
        """Stop what the agent hears: a channel busy playing takes no bridge until it ends."""
        try:
            await self._ari.request("DELETE", f"/playbacks/{_announcement(attempt_id)}")
        except AriError as error:  # over already
            log.info("callback.announcement_over", attempt_id=attempt_id, error=str(error))

    async def _variable(self, channel_id: str, name: str) -> str:
        """A channel variable's value, ``""`` when it is not set."""
        try:
            answer = await self._ari.request(
                "GET", f"/channels/{channel_id}/variable", {"variable": name}
            )
        except AriError as error:
            if "variable was not found" in str(error):
                return ""
            raise
        return str((answer or {}).get("value", ""))

    async def _continue(self, channel_id: str, context: str) -> None:
        try:
            await self._ari.continue_in_dialplan(channel_id, context, "s")
        except AriError as error:  # the caller hung up meanwhile
            log.info("callback.caller_gone", call_id=channel_id, error=str(error))

    async def _hang_up(self, channel_id: str) -> None:
        try:
            await self._ari.hangup(channel_id)
        except AriError as error:  # already gone: what we wanted
            log.info("callback.hangup_failed", channel=channel_id, error=str(error))

    @property
    def owner(self) -> str:
        """This controller's name on the callbacks it owns."""
        return self._owner

    @property
    def repository(self) -> CallbackRepository:
        return self._repo
