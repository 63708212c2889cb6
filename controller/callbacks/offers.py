"""The callback offer on the estimated wait (a queue's ``callback.offer_wait_above``).

app_queue's periodic announcement knows only how long a caller has waited. A caller about to
be answered should not be asked to hang up for a callback, and one facing a long wait should be
asked at once, so for such queues the controller offers: ``offer_due`` (pure) decides per
waiting caller from the same estimate the ``estimated_wait_above`` overflow rule uses, and
``CallbackOffers`` plays the offer to the caller where it waits. The sound is whispered into
the caller's channel (``ChanSpy(CHANNEL,qEw)`` of a Local channel whose other half plays it;
``dialplans/callbacks.conf``), so the caller never leaves ``Queue()``: it keeps its place and
hears the offer over its music; its DTMF 1 leaves the queue into the booking like the
announcement's. Asterisk's ``ChanSpyStart`` on the caller's channel counts the offer as made
(``callctl_callback_offers_total``).

Offers are the controller's: while it is down these queues make none (their callers still wait
and are answered). What was offered when is kept in memory; after a restart a caller may be
offered again sooner than ``offer_every``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime

from controller.asterisk.ami import AmiClient, AmiError
from controller.asterisk.events import AmiEvent, ChanSpyStart
from controller.callbacks.config import CallbackConfig
from controller.callbacks.service import is_placeholder
from controller.inbound.config import InboundConfig
from controller.inbound.rules import estimated_wait
from controller.inbound.snapshot import QueueSnapshot
from controller.logs import get_logger
from controller.metrics.registry import Metrics
from controller.state.model import LiveModel

log = get_logger("callbacks.offers")

TICK_S = 1.0
PLAY_CONTEXT = "callctl-callback-offer-play"  # dialplans/callbacks.conf: plays the sound
SPY_CONTEXT = "callctl-callback-offer-spy"  # whispers what it hears into the caller's channel
CHANNEL_VARIABLE = "CALLCTL_OFFER_CHANNEL"
SOUND_VARIABLE = "CALLCTL_OFFER_SOUND"


def offer_due(
    offer: CallbackConfig, waited_s: float, estimate_s: float | None,
    last_offered_s_ago: float | None,
) -> bool:
    """Whether a caller who has waited ``waited_s`` is offered a callback now: past
    ``offer_after``, ``offer_every`` after the last offer, and while the estimated remaining
    wait (``None``: nobody serving, unbounded) is above ``offer_wait_above``."""
    if offer.offer_wait_above is None or waited_s < offer.offer_after:
        return False
    if last_offered_s_ago is not None and last_offered_s_ago < offer.offer_every:
        return False
    return estimate_s is None or estimate_s > offer.offer_wait_above


class CallbackOffers:
    def __init__(
        self, config: InboundConfig, ami: AmiClient, model: LiveModel, metrics: Metrics,
        snapshot_of: Callable[[str], QueueSnapshot],
    ) -> None:
        self._config = config
        self.queues = {
            name: queue.callback for name, queue in config.queues.items()
            if queue.callback is not None and queue.callback.offer_wait_above is not None
        }
        self._ami = ami
        self._model = model
        self._metrics = metrics
        self._snapshot_of = snapshot_of
        self._offered_at: dict[str, float] = {}  # a waiting caller's uniqueid -> last offer
        self._numbers = itertools.count(1)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            await self._offer_where_due()

    async def _offer_where_due(self) -> None:
        now = self._model.now()
        moment = datetime.fromtimestamp(now, UTC)
        waiting: set[str] = set()
        for name, offer in self.queues.items():
            queue = self._model.queues.get(name)
            if queue is None or not queue.callers:
                continue
            snapshot = self._snapshot_of(name)
            for caller in snapshot.callers:
                live = queue.callers.get(caller.call_id)
                if live is None or is_placeholder(caller.call_id):
                    continue
                waiting.add(caller.call_id)
                last = self._offered_at.get(caller.call_id)
                estimate = estimated_wait(self._config.queues[name], snapshot, caller, moment)
                waited = (moment - caller.joined_at).total_seconds()
                if offer_due(offer, waited, estimate, None if last is None else now - last):
                    self._offered_at[caller.call_id] = now
                    await self._whisper(name, live.channel, caller.call_id, offer, estimate)
        for gone in self._offered_at.keys() - waiting:
            del self._offered_at[gone]

    async def _whisper(
        self, queue: str, channel: str, call_id: str, offer: CallbackConfig,
        estimate: float | None,
    ) -> None:
        try:
            await self._ami.originate(
                f"Local/s@{PLAY_CONTEXT}/n", f"cb-offer-{call_id}-{next(self._numbers)}",
                context=SPY_CONTEXT, exten="s", priority=1, timeout_s=5,
                variables={CHANNEL_VARIABLE: channel, SOUND_VARIABLE: offer.offer_sound},
            )
        except AmiError as error:
            log.warning("callback.offer_failed", call_id=call_id, queue=queue, error=str(error))
            return
        log.info("callback.offering", call_id=call_id, queue=queue,
                 estimated_wait_s=None if estimate is None else round(estimate, 1))

    def on_ami_event(self, event: AmiEvent) -> None:
        """Asterisk's ChanSpyStart of an offer's whisper: the caller hears the offer now."""
        if not isinstance(event, ChanSpyStart) or f"@{PLAY_CONTEXT}-" not in event.spyer_channel:
            return
        for name in self.queues:
            queue = self._model.queues.get(name)
            if queue is not None and event.spyee_uniqueid in queue.callers:
                self._metrics.callback_offered(name)
                log.info("callback.offered", call_id=event.spyee_uniqueid, queue=name)
                return
