"""A queue's callback offer (``[inbound.queues.NAME.callback]``).

The offer (``offer_sound``) comes first after ``offer_after`` seconds of waiting, then every
``offer_every``; DTMF 1 leaves the queue into the booking dialog. Without ``offer_wait_above`` it
is app_queue's periodic announcement (it goes on with the controller down). With it, the
controller offers only while the caller's estimated remaining wait is above that many seconds
(so a caller about to be answered is not asked), whispering the sound to the caller where it
waits (``controller.callbacks.offers``); ``offer_after = 0`` then offers on the estimate alone.
Sounds are Asterisk sound names (core sounds by default). A number is the caller id when it is
a valid number of one of ``regions`` (default: ``inbound.default_region``), otherwise the caller
keys one in.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from controller.section import Section

Sound = Annotated[str, Field(pattern=r"^[A-Za-z0-9_/-]+$")]
Region = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class CallbackConfig(Section):
    offer_after: int = Field(default=30, ge=0, description="seconds of waiting before the offer")
    offer_every: int = Field(default=60, ge=1, description="seconds between offers")
    offer_wait_above: int | None = Field(
        default=None, ge=1,
        description="offer only while the estimated remaining wait is above this (seconds)",
    )
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

    @model_validator(mode="after")
    def _offer_needs_a_start(self) -> CallbackConfig:
        if self.offer_after == 0 and self.offer_wait_above is None:
            # app_queue's periodic announcement cannot start at once
            raise ValueError("offer_after = 0 needs offer_wait_above (an offer on the estimate)")
        return self
