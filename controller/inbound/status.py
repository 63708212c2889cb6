"""What ``callctl queue status`` and the wallboard show: live model plus today's outcomes.

Service level today uses the same definition as the ``service_level_ratio`` gauge (answered
within the queue's ``service_level`` seconds, short abandons not counted), over the calls that
arrived since midnight UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controller.inbound.config import InboundConfig
from controller.metrics.service_level import service_level_ratio
from controller.state.model import LiveModel
from controller.store.base import Database

Waits = dict[str, tuple[list[float], list[float]]]


async def answer_waits(store: Database, since: datetime) -> Waits:
    """Per queue: seconds waited by answered calls and by abandoned calls ended since ``since``."""
    rows = await store.fetchall(
        "SELECT queue, outcome, queued_at, answered_at, ended_at FROM inbound_calls"
        " WHERE ended_at >= :since AND outcome IN ('answered', 'abandoned')"
        " AND queued_at IS NOT NULL",
        {"since": since.isoformat(timespec="milliseconds")},
    )
    waits: Waits = {}
    for row in rows:
        answered, abandoned = waits.setdefault(row["queue"], ([], []))
        start = datetime.fromisoformat(row["queued_at"])
        if row["outcome"] == "answered" and row["answered_at"]:
            answered.append((datetime.fromisoformat(row["answered_at"]) - start).total_seconds())
        elif row["outcome"] == "abandoned":
            abandoned.append((datetime.fromisoformat(row["ended_at"]) - start).total_seconds())
    return waits


async def queue_status(
    model: LiveModel, store: Database, inbound: InboundConfig
) -> list[dict[str, Any]]:
    now = model.now()
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = await store.fetchall(
        "SELECT queue, outcome, COUNT(*) AS n FROM inbound_calls"
        " WHERE arrived_at >= :since AND queue IS NOT NULL AND outcome IS NOT NULL"
        " GROUP BY queue, outcome",
        {"since": midnight.isoformat()},
    )
    today: dict[str, dict[str, int]] = {}
    for row in rows:
        today.setdefault(row["queue"], {})[row["outcome"]] = row["n"]
    waits = await answer_waits(store, midnight)
    result = []
    for name in sorted(set(model.queues) | set(today)):
        queue = model.queues.get(name)
        outcomes = today.get(name, {})
        answered = outcomes.get("answered", 0)
        abandoned = outcomes.get("abandoned", 0)
        queue_cfg = inbound.queues.get(name)
        answered_waits, abandoned_waits = waits.get(name, ([], []))
        service_level = (
            service_level_ratio(
                answered_waits,
                abandoned_waits,
                threshold_s=queue_cfg.service_level,
                short_abandon_s=queue_cfg.short_abandon,
            )
            if queue_cfg is not None and (answered_waits or abandoned_waits)
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
