"""``/api/v1/callbacks``: the callbacks (phone numbers are call data: bearer token to read
too) and cancelling a pending one."""

from __future__ import annotations

from aiohttp import web

from controller.api.auth import json_error, require_token
from controller.api.keys import CALLBACKS
from controller.callbacks.machine import PENDING, State
from controller.callbacks.repository import describe


@require_token
async def list_callbacks(request: web.Request) -> web.Response:
    raw = request.query.get("state", "")
    try:
        states = [State(name) for name in raw.split(",") if name]
    except ValueError:
        known = ", ".join(s.value for s in State)
        return json_error(400, f"state: unknown state in '{raw}' (one of {known})")
    listing = await request.app[CALLBACKS].repository.listing(states)
    return web.json_response({"callbacks": [describe(c.callback, c.owner) for c in listing]})


@require_token
async def cancel_callback(request: web.Request) -> web.Response:
    callback_id = request.match_info["callback_id"]
    service = request.app[CALLBACKS]
    cancelled = await service.cancel(callback_id)
    if cancelled is None:
        stored = await service.repository.get(callback_id)
        if stored is not None and stored.state in PENDING:  # only its owner may end it
            return json_error(
                409, f"callback '{callback_id}' is another controller's: cancel it there"
            )
        return json_error(404, f"no pending callback '{callback_id}'")
    return web.json_response(describe(cancelled, service.owner))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/callbacks", list_callbacks)
    app.router.add_post("/api/v1/callbacks/{callback_id}/cancel", cancel_callback)
