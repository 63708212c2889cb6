"""Query parameters of the listing routes (recordings, calls): times and a limit, each refused
with a 400 that names the parameter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

MAX_LIMIT = 10_000


def bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=web.json_response({"error": message}).text, content_type="application/json"
    )


def timestamp(request: web.Request, name: str) -> datetime | None:
    """Query parameter ``name`` as a moment (ISO-8601; UTC if it names no zone), or None."""
    text = request.query.get(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(f"query parameter {name}: not an ISO-8601 date or time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def limit(request: web.Request) -> int:
    text = request.query.get("limit", "1000")
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise bad_request(f"query parameter limit: an integer from 1 to {MAX_LIMIT}")
    return int(text)


def listing_window(request: web.Request) -> dict[str, Any]:
    """``since``, ``until`` and ``limit`` of a listing, as its filter's keyword arguments."""
    return {"since": timestamp(request, "since"), "until": timestamp(request, "until"),
            "limit": limit(request)}
