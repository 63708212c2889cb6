"""``/api/v1/schedules``: whether each schedule is open now (and why), and a supervisor's
override: ``PUT /api/v1/schedules/NAME/override`` with ``{"state": "open"|"closed"|"auto"}``
(``auto`` lifts it: the hours decide again). Changing it needs the bearer token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from controller.api.auth import json_error, require_token
from controller.api.keys import CONFIG, SCHEDULE_OVERRIDES
from controller.inbound.hours import is_open
from controller.inbound.overrides import parse_override


def _describe(request: web.Request, name: str) -> dict[str, Any]:
    schedule = request.app[CONFIG].inbound.schedules[name]
    overrides = request.app[SCHEDULE_OVERRIDES]
    override = overrides.current.get(name)
    now = datetime.now(UTC)
    set_at = overrides.set_at.get(name)
    return {
        "schedule": name,
        "open": is_open(schedule, now, override),
        "hours_open": is_open(schedule, now),
        "override": override.value if override else "auto",
        "override_set_at": set_at.isoformat() if set_at else None,
    }


async def list_schedules(request: web.Request) -> web.Response:
    names = sorted(request.app[CONFIG].inbound.schedules)
    return web.json_response({"schedules": [_describe(request, name) for name in names]})


@require_token
async def set_override(request: web.Request) -> web.Response:
    name = request.match_info["schedule"]
    if name not in request.app[CONFIG].inbound.schedules:
        return json_error(404, f"no schedule '{name}' in inbound.schedules")
    try:
        body = await request.json()
    except ValueError:
        return json_error(400, "request body is not valid JSON")
    state = body.get("state") if isinstance(body, dict) else None
    if not isinstance(state, str):
        return json_error(400, 'body: give {"state": "open"|"closed"|"auto"}')
    try:
        override = parse_override(state)
    except ValueError as error:
        return json_error(400, f"state: {error}")
    await request.app[SCHEDULE_OVERRIDES].set(name, override, by=str(body.get("by", "api")))
    return web.json_response(_describe(request, name))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/schedules", list_schedules)
    app.router.add_put("/api/v1/schedules/{schedule}/override", set_override)
