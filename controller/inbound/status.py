"""What ``callctl queue status`` and the wallboard show: live model plus today's outcomes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controller.state.model import LiveModel
from controller.store.base import Database


async def queue_status(model: LiveModel, store: Database) -> list[dict[str, Any]]:
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
    result = []
    for name in sorted(set(model.queues) | set(today)):
        queue = model.queues.get(name)
        outcomes = today.get(name, {})
        answered = outcomes.get("answered", 0)
        abandoned = outcomes.get("abandoned", 0)
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
            }
        )
    return result
