"""Time zones by IANA name: one lookup for schedules and leads, and one way to say a name is
unknown."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SHOWN_NAME_CHARS = 60  # an unknown name is echoed back cut to this


def zone_named(name: str) -> ZoneInfo | None:
    """The zone ``name`` is, or None when it is no IANA name zoneinfo can open."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long, a folder
        return None


def unknown_zone(name: str) -> str:
    """The message for a name :func:`zone_named` does not know."""
    shown = name if len(name) <= SHOWN_NAME_CHARS else f"{name[:SHOWN_NAME_CHARS]}..."
    return f"unknown timezone {shown!r}"
