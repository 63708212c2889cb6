"""What ``callctl queue status`` and the wallboard show: the site's live queues plus today's
outcomes and agents' dispositions.

The live part is this node's model merged with the other nodes' fresh views from the store
(``controller.inbound.site_queues``): callers on any node, each agent's busiest state.
Service level today uses the same definition as the ``service_level_ratio`` gauge (answered
within the queue's ``service_level`` seconds, short abandons not counted, callbacks from the
caller's first arrival), over the calls and callbacks that ended since midnight UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controller.inbound.config import InboundConfig
from controller.inbound.repository import InboundCallRepository, QueueTally, QueueWaits
from controller.inbound.site_queues import merge_views, views_by_queue
from controller.inbound.waits import service_level_waits
from controller.metrics.service_level import service_level_ratio
from controller.nodes.queue_views import NodeQueueViewRepository
from controller.state.model import LiveModel
from controller.store.base import Database


async def queue_status(
    model: LiveModel, store: Database, inbound: InboundConfig, node: str
) -> list[dict[str, Any]]:
    now = model.now()
    moment = datetime.fromtimestamp(now, UTC)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    calls = InboundCallRepository(store)
    today = await calls.tallies(arrived_since=midnight)
    waits = await service_level_waits(store, midnight)
    live = views_by_queue(
        model.queues, now, await NodeQueueViewRepository(store).fresh(node, moment))
    result = []
    for name in sorted(live.keys() | today.keys()):
        views = live.get(name, [])
        site = merge_views(views)
        tally = today.get(name, QueueTally())
        outcomes = tally.outcomes
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
                "callers": site.callers,
                "longest_wait_s": round(site.longest_wait(now), 1),
                "agents": {s.value: n for s, n in site.agents_by_state().items()}
                if views
                else {},
                "nodes": len(views),  # the nodes whose live view of the queue is counted
                "today": outcomes,
                "dispositions_today": tally.dispositions,
                "answered_ratio_today": round(answered / (answered + abandoned), 3)
                if answered + abandoned
                else None,
                "service_level_today": None if service_level is None else round(service_level, 3),
                "service_level_s": queue_cfg.service_level if queue_cfg else None,
            }
        )
    return result
