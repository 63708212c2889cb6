"""``/api/v1/campaigns``: outbound campaigns' progress for wallboards and CRMs, their state
changes (start, pause, resume, stop), settings and lead recycling for a supervisor's desk.

Reads carry counts, rates and settings, no call data, so they need no token (as the queues'); a
state or settings change needs the bearer token. These are the store calls ``callctl campaign``
makes, and the runner picks a change up at its next tick either way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.api.auth import json_body, json_error, require_token
from controller.api.keys import STORE
from controller.config import ConfigError, validation_problems
from controller.dialer.policy import CAMPAIGN_TRANSITIONS, RecycleRule, Result
from controller.dialer.repository import (
    DialerRepository,
    DialerStoreError,
    UnknownCampaign,
    UnknownDisposition,
)
from controller.dialer.settings import parse_campaign_settings


def _repo(request: web.Request) -> DialerRepository:
    return DialerRepository(request.app[STORE])


def _invalid(what: str, problems: list[tuple[str, str]]) -> web.Response:
    """A 400 listing each bad key of the body with what is wrong with it."""
    listed = [{"key": key, "message": message} for key, message in problems]
    return web.json_response({"error": f"invalid {what}", "problems": listed}, status=400)


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


async def campaign_settings(request: web.Request) -> web.Response:
    try:
        found = await _repo(request).campaign(request.match_info["name"])
    except UnknownCampaign as error:
        return json_error(404, str(error))
    return web.json_response(found.settings_report())


@require_token
async def update_settings(request: web.Request) -> web.Response:
    """Replace the settings (the body: every key, as ``GET .../settings`` gives them)."""
    name = request.match_info["name"]
    try:
        settings = parse_campaign_settings(await json_body(request), "request body")
    except ConfigError as error:
        return _invalid("campaign settings", error.problems)
    try:
        update = await _repo(request).update_settings(name, settings, datetime.now(UTC))
    except UnknownCampaign as error:
        return json_error(404, str(error))
    except DialerStoreError as error:  # stopped, or a key that never changes
        return json_error(409, str(error))
    return web.json_response(update.report())


class RecycleRequest(BaseModel):
    """The body of ``POST .../recycle``: the ``callctl campaign recycle`` options."""

    model_config = ConfigDict(extra="forbid")

    results: list[Result] = []
    dispositions: list[str] = []
    older_than_hours: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    dry_run: bool = False


@require_token
async def recycle_leads(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        body = RecycleRequest.model_validate(await json_body(request))
        rule = RecycleRule(
            results=frozenset(body.results),
            dispositions=frozenset(body.dispositions),
            older_than=timedelta(hours=body.older_than_hours),
        )
    except ValidationError as error:
        return _invalid("recycle request", validation_problems(error))
    except ValueError as error:
        return json_error(400, str(error))
    try:
        outcome = await _repo(request).recycle_leads(
            name, rule, datetime.now(UTC), dry_run=body.dry_run
        )
    except UnknownCampaign as error:
        return json_error(404, str(error))
    except UnknownDisposition as error:
        return json_error(400, str(error))
    except DialerStoreError as error:  # stopped
        return json_error(409, str(error))
    return web.json_response(outcome.report())


def add_routes(app: web.Application) -> None:
    actions = "|".join(CAMPAIGN_TRANSITIONS)
    app.router.add_get("/api/v1/campaigns", list_campaigns)
    app.router.add_get("/api/v1/campaigns/{name}", campaign_status)
    app.router.add_get("/api/v1/campaigns/{name}/settings", campaign_settings)
    app.router.add_put("/api/v1/campaigns/{name}/settings", update_settings)
    app.router.add_post("/api/v1/campaigns/{name}/recycle", recycle_leads)
    app.router.add_post(f"/api/v1/campaigns/{{name}}/{{action:{actions}}}", change_state)
