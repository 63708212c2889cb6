"""Metrics configuration: the window the queue service level is computed over.

The per-queue thresholds (answer within N s, short abandon under M s, target) belong to each
queue's inbound config; the window is one choice for the whole wallboard.
"""

from __future__ import annotations

from pydantic import Field

from controller.section import Section


class MetricsConfig(Section):
    service_level_window: float = Field(
        default=3600.0,
        gt=0,
        description="seconds of finished calls that callctl_queue_service_level_ratio covers",
    )
