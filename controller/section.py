"""The one base of every config model: the controller TOML's sections, campaign settings,
inbound destinations.

Unknown keys are errors (a typo is not silently ignored), values are immutable, a float is a
finite number (TOML and JSON can spell ``inf`` and ``nan``; no setting means either), and no
text holds a control character (NUL, ESC, a newline, a tab: Unicode category Cc). Config text
ends up in Asterisk's rendered configuration, in dialplan arguments, in AMI actions and in log
lines, where a newline starts a new line and an escape sequence repaints a terminal; no setting
is multi-line text, so none needs one. That holds for plain strings, secrets, paths and the
strings inside lists, tuples and dicts (keys too); pydantic puts the field's key path on the
error, the message says where inside the value.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator


def first_control_character(text: str) -> str | None:
    """The first character of ``text`` in Unicode category Cc, if any."""
    return next((char for char in text if unicodedata.category(char) == "Cc"), None)


def _texts(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """``(where, text)`` for every string in ``value``, however deep in lists, tuples, sets
    and dicts; ``where`` is the position inside the value (``[2]``, ``['sales']``)."""
    if isinstance(value, SecretStr):
        yield where, value.get_secret_value()
    elif isinstance(value, str | PurePath):
        yield where, str(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(key, f"{where} key" if where else "a key")
            yield from _texts(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from _texts(item, f"{where}[{index}]")


class Section(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable, floats are
    finite, text has no control characters."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        for where, text in _texts(value):
            char = first_control_character(text)
            if char is not None:
                inside = f" (in {where})" if where else ""
                # the character by code point: printed as is it would do what it is refused for
                raise ValueError(f"control character U+{ord(char):04X} is not allowed{inside}")
        return value
