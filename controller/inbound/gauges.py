"""Scrape-time gauges of the inbound queues, read from the live model and the store."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from controller.inbound.config import InboundConfig
from controller.inbound.estimate import average_handle_time, estimate_wait
from controller.inbound.hours import Override, is_open
from controller.inbound.repository import QueueWaits
from controller.inbound.router import InboundRouter
from controller.inbound.waits import service_level_waits
from controller.metrics.service_level import service_level_ratio
from controller.metrics.snapshot import QueueGauges
from controller.state.model import AgentState, LiveModel
from controller.store.base import Database


class QueueGaugeProvider:
    def __init__(
        self,
        config: InboundConfig,
        model: LiveModel,
        router: InboundRouter,
        store: Database,
        window_s: float,
        overrides: Mapping[str, Override] | None = None,
    ) -> None:
        self._config = config
        self._overrides: Mapping[str, Override] = overrides if overrides is not None else {}
        self._model = model
        self._router = router
        self._store = store
        self._window_s = window_s

    def _open(self, queue: str, at: datetime) -> bool:
        routes = [r for r in self._config.numbers.values() if r.queue == queue]
        return any(
            r.schedule is None
            or is_open(self._config.schedules[r.schedule], at, self._overrides.get(r.schedule))
            for r in routes
        )

    async def __call__(self) -> list[QueueGauges]:
        now = self._model.now()
        moment = datetime.fromtimestamp(now, UTC)
        waits = await service_level_waits(self._store, moment - timedelta(seconds=self._window_s))
        gauges = []
        for name, queue_cfg in self._config.queues.items():
            queue = self._model.queues.get(name)
            snapshot = self._router.snapshot_of(name)
            aht = average_handle_time(snapshot.recent_handle_times, queue_cfg.default_handle_time)
            estimate = estimate_wait(
                len(snapshot.callers) + 1, snapshot.agents, moment, aht, queue_cfg.wrapup
            )
            queue_waits = waits.get(name, QueueWaits())
            by_state = queue.agents_by_state(now) if queue else {}
            gauges.append(
                QueueGauges(
                    queue=name,
                    open=self._open(name, moment),
                    callers=len(snapshot.callers),
                    oldest_wait_s=queue.oldest_wait(now) if queue else 0.0,
                    estimated_wait_s=math.inf if estimate is None else estimate,
                    service_level_ratio=service_level_ratio(
                        queue_waits.answered,
                        queue_waits.abandoned,
                        threshold_s=queue_cfg.service_level,
                        short_abandon_s=queue_cfg.short_abandon,
                    ),
                    service_level_target_ratio=queue_cfg.service_level_target,
                    agents_by_state={
                        state: count
                        for state, count in by_state.items()
                        if state is not AgentState.UNAVAILABLE
                    },
                    paused_by_reason=dict(Counter(
                        member.paused_reason for member in queue.members.values()
                        if member.state(now) is AgentState.PAUSED)) if queue else {},
                )
            )
        return gauges
