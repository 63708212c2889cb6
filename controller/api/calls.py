"""``/api/v1/calls``: the inbound call report, newest first; needs the bearer token (callers'
numbers are call data). Filters: ``queue``, ``agent``, ``outcome``, ``since`` and ``until``
(arrival, ISO-8601), ``limit``."""

from __future__ import annotations

from aiohttp import web

from controller.api.auth import require_token
from controller.api.keys import STORE
from controller.api.query import bad_request, listing_window
from controller.inbound.repository import CallFilter, InboundCallRepository
from controller.metrics.snapshot import QUEUE_OUTCOMES


def _outcome(request: web.Request) -> str | None:
    outcome = request.query.get("outcome")
    if outcome is not None and outcome not in QUEUE_OUTCOMES:
        raise bad_request(f"query parameter outcome: one of {', '.join(QUEUE_OUTCOMES)}")
    return outcome


@require_token
async def list_calls(request: web.Request) -> web.Response:
    where = CallFilter(
        queue=request.query.get("queue"),
        agent_id=request.query.get("agent"),
        outcome=_outcome(request),
        **listing_window(request),
    )
    calls = await InboundCallRepository(request.app[STORE]).list_calls(where)
    return web.json_response({"calls": calls})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/calls", list_calls)
