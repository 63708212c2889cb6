"""Inbound routing configuration: schedules, queues, overflow rules, numbers (DIDs).

Placeholder until the inbound issue fills it; the controller config embeds ``InboundConfig``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class InboundConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
