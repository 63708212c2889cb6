"""Which number a callback may call: a valid number of an allowed region, as E.164."""

from __future__ import annotations

from collections.abc import Sequence

import phonenumbers


def callback_number(raw: str, regions: Sequence[str]) -> str | None:
    """``raw`` (a caller id or keyed digits) as E.164 when it is a valid number of one of
    ``regions``; None otherwise (anonymous, too short, a region we may not call)."""
    text = raw.strip()
    if not text or not regions:
        return None
    for region in regions:
        try:
            parsed = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_valid_number(parsed) and (
            phonenumbers.region_code_for_number(parsed) in regions
        ):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None
