"""The agents' scrape-time gauges: ``agent_stats`` over the metrics window, read from the
store at each scrape, with every configured pause reason (and ``missed``) present per agent so
dashboards see the same series whatever happened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from controller.agents.config import MISSED_REASON
from controller.agents.repository import StatusLogRepository
from controller.config import Config
from controller.metrics.snapshot import AgentGauges
from controller.store.base import Database


class AgentGaugeProvider:
    def __init__(self, store: Database, config: Config, window_s: float,
                 clock: Callable[[], datetime]) -> None:
        self._history = StatusLogRepository(store)
        self._wrapup = config.inbound.wrapup_seconds()
        self._reasons = sorted({*config.agents.pause_reasons.values(), MISSED_REASON, ""})
        self._window = timedelta(seconds=window_s)
        self._now = clock

    async def __call__(self) -> list[AgentGauges]:
        now = self._now()
        since = now - self._window
        stats = await self._history.stats(self._wrapup, since, now)
        return [AgentGauges(
            agent=s.agent_id, calls_handled=s.calls_handled,
            seconds_by_activity={"logged_in": s.logged_in_s, "talking": s.talk_s,
                                 "wrapup": s.wrapup_s, "paused": sum(s.paused_s.values())},
            paused_by_reason={reason: s.paused_s.get(reason, 0.0) for reason in
                              sorted({*self._reasons, *s.paused_s})},
            occupancy_ratio=s.occupancy) for s in stats]
