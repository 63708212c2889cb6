"""Recording configuration: policies per queue and campaign, storage root, retention.

Placeholder until the recording issue fills it; the controller config embeds ``RecordingConfig``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RecordingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
