"""``/api/v1/campaigns``: outbound campaigns' progress for wallboards and CRMs, and their state
changes (start, pause, resume, stop) for a supervisor's desk.

Reads carry counts and rates, no call data, so they need no token (as the queues'); a state
change needs the bearer token. These are the store calls ``callctl campaign`` makes, and the
runner picks a change up at its next tick either way.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from controller.api.auth import json_error, require_token
from controller.api.keys import STORE
from controller.dialer.policy import CAMPAIGN_TRANSITIONS
from controller.dialer.repository import DialerRepository, DialerStoreError, UnknownCampaign


def _repo(request: web.Request) -> DialerRepository:
    return DialerRepository(request.app[STORE])


async def list_campaigns(request: web.Request) -> web.Response:
    rows = await _repo(request).list_campaigns()
    return web.json_response({"campaigns": [dict(row) for row in rows]})


async def campaign_status(request: web.Request) -> web.Response:
    try:
        report = await _repo(request).status(request.match_info["name"], datetime.now(UTC))
    except UnknownCampaign as error:
        return json_error(404, str(error))
    return web.json_response(report)


@require_token
async def change_state(request: web.Request) -> web.Response:
    name, action = request.match_info["name"], request.match_info["action"]
    try:
        old, new = await _repo(request).change_state(name, action, datetime.now(UTC))
    except UnknownCampaign as error:
        return json_error(404, str(error))
    except DialerStoreError as error:  # not allowed from its current state
        return json_error(409, str(error))
    return web.json_response({"campaign": name, "from": old, "to": new})


def add_routes(app: web.Application) -> None:
    actions = "|".join(CAMPAIGN_TRANSITIONS)
    app.router.add_get("/api/v1/campaigns", list_campaigns)
    app.router.add_get("/api/v1/campaigns/{name}", campaign_status)
    app.router.add_post(f"/api/v1/campaigns/{{name}}/{{action:{actions}}}", change_state)
