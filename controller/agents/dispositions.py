"""What a queue call came to, as its agent keys it on the phone: the disposition feature code
(``*48``) and one key, looked up in the call's queue (``dispositions`` of
``[inbound.queues.NAME]``).

The key names the agent's latest answered queue call (the store has it from the answer on, so
a key right after the hang-up finds that call, not the one before). One disposition per call;
a call that ended more than ``[agents] disposition_minutes`` ago takes none (an agent back
from lunch keys the next call, not one from the morning). Keyed while the queue's wrap-up runs,
it ends the wrap-up as ``*47`` does: the agent has said what the after-call work was for. A
disposition with ``dnc`` puts the caller's number on the global do-not-call list (read in
``[inbound] default_region`` unless it carries its +CC). A campaign's calls take their
disposition on the agent's nailed-up line instead (``dialer/campaign.py``).

``dispose_last_call`` decides from plain values; ``DispositionService`` reads the call, stores
the decision, counts and logs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.agents.machine import Refusal
from controller.dialer.leads import normalise_number
from controller.dialer.repository import GLOBAL_DNC, DialerRepository
from controller.inbound.config import InboundConfig, QueueConfig
from controller.inbound.repository import AnsweredCall, InboundCallRepository
from controller.logs import get_logger
from controller.metrics.registry import Metrics
from controller.store.base import Database

log = get_logger("agents.disposition")
# phonenumbers' region for "no region": only numbers written with +CC are read
UNKNOWN_REGION = "ZZ"


@dataclass(frozen=True)
class KeyedDisposition:
    """The disposition to store on ``call_id``, whether it ends the agent's wrap-up, and the
    caller to put on the do-not-call list (None: the disposition asks for none)."""

    call_id: str
    queue: str
    name: str
    ends_wrapup: bool
    do_not_call: str | None = None


def dispose_last_call(
    call: AnsweredCall | None, key: str, queues: Mapping[str, QueueConfig], now: datetime,
    window: timedelta,
) -> KeyedDisposition | Refusal:
    """What ``key`` does to the agent's latest answered queue call ``call``."""
    if call is None:
        return Refusal("no queue call answered")
    if call.disposition is not None:
        return Refusal(f"call {call.call_id} is {call.disposition} already")
    queue = queues.get(call.queue)
    disposition = queue.dispositions.get(key) if queue is not None else None
    if queue is None or disposition is None:
        return Refusal(f"queue {call.queue} has no disposition on key {key!r}")
    if call.ended_at is not None and now - call.ended_at > window:
        minutes = (now - call.ended_at).total_seconds() / 60
        return Refusal(f"call {call.call_id} ended {minutes:.0f} min ago")
    in_wrapup = call.ended_at is not None and now < call.ended_at + timedelta(
        seconds=queue.wrapup)
    return KeyedDisposition(call.call_id, call.queue, disposition.name, in_wrapup,
                            call.caller if disposition.dnc else None)


class DispositionService:
    def __init__(
        self, store: Database, inbound: InboundConfig, window: timedelta, metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._calls = InboundCallRepository(store)
        self._dnc = DialerRepository(store)
        self._queues = inbound.queues
        self._region = inbound.default_region or UNKNOWN_REGION
        self._window = window
        self._metrics = metrics
        self._now = clock

    async def key(self, agent_id: str, key: str) -> KeyedDisposition | Refusal:
        """Store what ``agent_id``'s latest queue call came to by ``key``, or say why not."""
        now = self._now()
        call = await self._calls.last_answered_by(agent_id)
        decision = dispose_last_call(call, key, self._queues, now, self._window)
        if isinstance(decision, KeyedDisposition) and not await self._calls.record_disposition(
                decision.call_id, decision.name, agent_id, now):
            decision = Refusal(f"call {decision.call_id} has a disposition already")
        if isinstance(decision, Refusal):
            log.info("agent.disposition_refused", agent_id=agent_id, key=key, why=decision.why)
            return decision
        self._metrics.queue_disposition(decision.queue, decision.name)
        log.info("agent.disposition", agent_id=agent_id, call_id=decision.call_id,
                 queue=decision.queue, disposition=decision.name, key=key)
        if decision.do_not_call is not None:
            await self._put_on_dnc(decision, agent_id, now)
        return decision

    async def _put_on_dnc(self, decision: KeyedDisposition, agent_id: str, now: datetime) -> None:
        """The caller asked not to be called: its number on the global list, as a campaign's
        ``dnc`` disposition does. A caller id that is no number (withheld, or national with no
        ``[inbound] default_region`` to read it in) is logged for a person to act on."""
        raw = decision.do_not_call or ""
        try:
            number = normalise_number(raw, self._region)
        except ValueError as error:
            log.warning("agent.dnc_number_unreadable", agent_id=agent_id,
                        call_id=decision.call_id, caller=raw, error=str(error))
            return
        added = await self._dnc.add_dnc(
            GLOBAL_DNC, [number], now, f"disposition {decision.name} by agent {agent_id}")
        log.info("agent.dnc_added", agent_id=agent_id, call_id=decision.call_id, phone=number,
                 new=bool(added))
