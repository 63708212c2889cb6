"""The one base of every config model: the controller TOML's sections, campaign settings,
inbound destinations.

Unknown keys are errors (a typo is not silently ignored) and values are immutable.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
