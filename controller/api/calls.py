"""``/api/v1/calls``: the inbound call report, newest first; needs the bearer token (callers'
numbers are call data). Filters: ``queue``, ``agent``, ``outcome``, ``since`` and ``until``
(arrival, ISO-8601), ``limit``."""

from __future__ import annotations

from aiohttp import web

from controller.api.auth import require_token
from controller.api.keys import STORE
from controller.api.query import listing_window
from controller.inbound.repository import CallFilter, InboundCallRepository


@require_token
async def list_calls(request: web.Request) -> web.Response:
    where = CallFilter(
        queue=request.query.get("queue"),
        agent_id=request.query.get("agent"),
        outcome=request.query.get("outcome"),
        **listing_window(request),
    )
    calls = await InboundCallRepository(request.app[STORE]).list_calls(where)
    return web.json_response({"calls": calls})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/calls", list_calls)
