"""What ``callctl queue status`` and the wallboard show: live model plus today's outcomes.

Service level today uses the same definition as the ``service_level_ratio`` gauge (answered
within the queue's ``service_level`` seconds, short abandons not counted, callbacks from the
caller's first arrival), over the calls and callbacks that ended since midnight UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controller.inbound.config import InboundConfig
from controller.inbound.repository import InboundCallRepository, QueueWaits
from controller.inbound.waits import service_level_waits
from controller.metrics.service_level import service_level_ratio
from controller.state.model import LiveModel
from controller.store.base import Database


async def queue_status(
    model: LiveModel, store: Database, inbound: InboundConfig
) -> list[dict[str, Any]]:
    now = model.now()
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    calls = InboundCallRepository(store)
    today = await calls.outcome_counts(arrived_since=midnight)
    waits = await service_level_waits(store, midnight)
    result = []
    for name in sorted(set(model.queues) | set(today)):
        queue = model.queues.get(name)
        outcomes = today.get(name, {})
        answered = outcomes.get("answered", 0)
        abandoned = outcomes.get("abandoned", 0)
        queue_cfg = inbound.queues.get(name)
        queue_waits = waits.get(name, QueueWaits())
        service_level = (
            service_level_ratio(
                queue_waits.answered,
                queue_waits.abandoned,
                threshold_s=queue_cfg.service_level,
                short_abandon_s=queue_cfg.short_abandon,
            )
            if queue_cfg is not None and (queue_waits.answered or queue_waits.abandoned)
            else None
        )
        result.append(
            {
                "queue": name,
                "callers": len(queue.callers) if queue else 0,
                "longest_wait_s": round(queue.oldest_wait(now), 1) if queue else 0.0,
                "agents": {s.value: n for s, n in queue.agents_by_state(now).items()}
                if queue
                else {},
                "today": outcomes,
                "answered_ratio_today": round(answered / (answered + abandoned), 3)
                if answered + abandoned
                else None,
                "service_level_today": None if service_level is None else round(service_level, 3),
                "service_level_s": queue_cfg.service_level if queue_cfg else None,
            }
        )
    return result
