"""A queue's callback offer (``[inbound.queues.NAME.callback]``).

The offer is app_queue's periodic announcement (first after ``offer_after`` seconds, then every
``offer_every``); DTMF 1 leaves the queue into the booking dialog. Sounds are Asterisk sound
names (core sounds by default). A number is the caller id when it is a valid number of one of
``regions`` (default: ``inbound.default_region``), otherwise the caller keys one in.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Sound = Annotated[str, Field(pattern=r"^[A-Za-z0-9_/-]+$")]
Region = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class CallbackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    offer_after: int = Field(default=30, ge=1, description="seconds of waiting before the offer")
    offer_every: int = Field(default=60, ge=1, description="seconds between offers")
    offer_sound: Sound = "vm-tocallnum"  # "press 1 to call this number"
    always_ask_number: bool = False
    regions: tuple[Region, ...] = ()
    entry_attempts: int = Field(default=3, ge=1, description="keyed numbers refused, then goodbye")
    schedule: str | None = Field(
        default=None, description="no callback is dialed while this schedule is closed"
    )
    when_closed: Literal["carry", "expire"] = "carry"
    expire_after: int = Field(default=96 * 3600, ge=60, description="seconds after booking")
    require_key: bool = Field(
        default=True, description="the customer presses 1 before the bridge (not a voicemail)"
    )
    key_timeout: int = Field(
        default=5, ge=1, le=60, description="seconds the customer has to press 1 (require_key)"
    )
    retries: int = Field(default=2, ge=0, description="more attempts after an unanswered one")
    retry_gap: int = Field(default=300, ge=1, description="seconds between attempts")
    ring_timeout: int = Field(default=30, ge=5, description="seconds the customer's phone rings")
    caller_id: str = Field(default="", description="caller id the customer sees (default: none)")
    announce_sound: Sound = "queue-thankyou"  # the customer hears it on answering
