"""What an agent says a call came to, with one key on the phone: the key and the name, the same
for a campaign's calls (``[dispositions]`` of its settings) and a queue's (``dispositions`` of
``[inbound.queues.NAME]``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, Field


# A key of the phone's keypad; * and # stay free for the phone's own features.
def _keypad_digit(key: str) -> str:
    if len(key) != 1 or key not in "0123456789":
        raise ValueError(f"a disposition key is one digit, 0 to 9, not {key!r}")
    return key


DispositionKey = Annotated[str, AfterValidator(_keypad_digit)]
# A label of metrics and reports: short, lower case, no spaces.
DispositionName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


def check_distinct(names: Iterable[str]) -> None:
    """One name, one key: a report counting a name must mean one thing the agent said."""
    seen = list(names)
    repeated = sorted({name for name in seen if seen.count(name) > 1})
    if repeated:
        raise ValueError(f"a disposition name is on more than one key: {', '.join(repeated)}")
