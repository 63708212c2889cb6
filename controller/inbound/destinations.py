"""Where a call can be sent instead of (or after) a queue: a small tagged union.

Overflow rules and after-hours routes share these four kinds. Each has one stable string form
(``queue:sales``, ``external:+442079460000``, ``voicemail:100@default``, ``announcement:closed``)
used in logs, the store and as the short form in the TOML config; ``parse_destination`` reads it
back, so the form in the store and the form in the config are the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import BaseModel, BeforeValidator, Field, field_validator

from controller.section import Section

_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"


class _Destination(Section):
    """Base of the destination kinds: config text like any other section's."""


class QueueDestination(_Destination):
    """Another configured queue (which may overflow again)."""

    type: Literal["queue"] = "queue"
    queue: str = Field(pattern=_NAME_PATTERN)

    def __str__(self) -> str:
        return f"queue:{self.queue}"


class ExternalDestination(_Destination):
    """An outside number dialled over a trunk (e.g. an outsourced call center).

    ``trunk`` is the PJSIP endpoint to dial through; ``None`` means the inbound section's
    ``external_trunk``.
    """

    type: Literal["external"] = "external"
    number: str
    trunk: str | None = Field(default=None, pattern=_NAME_PATTERN)

    @field_validator("number")
    @classmethod
    def _is_e164(cls, value: str) -> str:
        try:
            parsed = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is None or not phonenumbers.is_possible_number(parsed):
            raise ValueError(f"'{value}' is not a possible E.164 number (like +442079460000)")
        normal = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if normal != value:
            raise ValueError(f"write the number in E.164 form: '{normal}'")
        return value

    def __str__(self) -> str:
        return f"external:{self.number}" + (f"@{self.trunk}" if self.trunk else "")


class VoicemailDestination(_Destination):
    """A voicemail box, ``mailbox`` or ``mailbox@context`` as app_voicemail writes it."""

    type: Literal["voicemail"] = "voicemail"
    mailbox: str = Field(pattern=r"^[A-Za-z0-9_-]+(@[A-Za-z0-9_-]+)?$")

    def __str__(self) -> str:
        return f"voicemail:{self.mailbox}"


class AnnouncementDestination(_Destination):
    """Play a sound file (Asterisk sound name, no extension), then hang up."""

    type: Literal["announcement"] = "announcement"
    sound: str = Field(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")

    def __str__(self) -> str:
        return f"announcement:{self.sound}"


_FIELD_OF_KIND = {
    "queue": "queue",
    "external": "number",
    "voicemail": "mailbox",
    "announcement": "sound",
}


def tagged_union(tag: str, models: dict[str, type[BaseModel]]) -> Callable[[Any], BaseModel]:
    """A validator picking the model named by the ``tag`` key of a table.

    Pydantic's discriminated unions put the tag into error locations
    (``overflow[1].max_wait.seconds``); dispatching by hand keeps the key path the user wrote
    (``overflow[1].seconds``), because a nested ``ValidationError`` keeps its own locations.
    """
    choices = ", ".join(repr(name) for name in models)

    def validate(value: Any) -> BaseModel:
        if isinstance(value, BaseModel) and isinstance(value, tuple(models.values())):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"expected a table with '{tag}' ({choices})")
        model = models.get(str(value.get(tag)))
        if model is None:
            raise ValueError(f"'{tag}' must be one of {choices}")
        return model.model_validate(value)

    return validate


_validate_table = tagged_union(
    "type",
    {
        "queue": QueueDestination,
        "external": ExternalDestination,
        "voicemail": VoicemailDestination,
        "announcement": AnnouncementDestination,
    },
)


def _validate_destination(value: Any) -> Any:
    """Accept the short form ``kind:value`` or a table with ``type``."""
    if not isinstance(value, str):
        return _validate_table(value)
    kind, sep, rest = value.partition(":")
    if not sep or kind not in _FIELD_OF_KIND or not rest:
        kinds = ", ".join(f"{k}:..." for k in _FIELD_OF_KIND)
        raise ValueError(f"'{value}' is not a destination (expected one of {kinds})")
    if kind == "external" and "@" in rest:
        number, _, trunk = rest.partition("@")
        return _validate_table({"type": kind, "number": number, "trunk": trunk})
    return _validate_table({"type": kind, _FIELD_OF_KIND[kind]: rest})


AnyDestination = (
    QueueDestination | ExternalDestination | VoicemailDestination | AnnouncementDestination
)

Destination = Annotated[AnyDestination, BeforeValidator(_validate_destination)]
"""A destination as config fields declare it: the short string form or a table with ``type``."""


class _DestinationHolder(BaseModel):
    destination: Destination


def parse_destination(text: str) -> AnyDestination:
    """Read back a destination's stable string form (raises ``pydantic.ValidationError``)."""
    return _DestinationHolder.model_validate({"destination": text}).destination
