"""``/api/v1/callbacks``: the callbacks (phone numbers are call data: bearer token to read
too) and cancelling a pending one."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from controller.api.auth import json_error, require_token
from controller.api.keys import CALLBACKS
from controller.callbacks.machine import Callback, State


def callback_json(callback: Callback) -> dict[str, Any]:
    return {
        "callback_id": callback.callback_id,
        "queue": callback.queue,
        "phone": callback.phone,
        "state": callback.state.value,
        "attempts": callback.attempts,
        "arrived_at": callback.arrived_at.isoformat(),
        "booked_at": callback.booked_at.isoformat(),
        "not_before": callback.not_before.isoformat() if callback.not_before else None,
    }


@require_token
async def list_callbacks(request: web.Request) -> web.Response:
    raw = request.query.get("state", "")
    try:
        states = [State(name) for name in raw.split(",") if name]
    except ValueError:
        known = ", ".join(s.value for s in State)
        return json_error(400, f"state: unknown state in '{raw}' (one of {known})")
    listing = await request.app[CALLBACKS].repository.listing(states)
    return web.json_response({"callbacks": [callback_json(c) for c in listing]})


@require_token
async def cancel_callback(request: web.Request) -> web.Response:
    callback_id = request.match_info["callback_id"]
    cancelled = await request.app[CALLBACKS].cancel(callback_id)
    if cancelled is None:
        return json_error(404, f"no pending callback '{callback_id}'")
    return web.json_response(callback_json(cancelled))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/callbacks", list_callbacks)
    app.router.add_post("/api/v1/callbacks/{callback_id}/cancel", cancel_callback)
