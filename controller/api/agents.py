"""``/api/v1/agents``: list agents and their numbers (``stats``); login, logout, pause,
unpause them and end their wrap-up (token required).

Every change goes through the agent status service, as the phone's feature codes do: a change
the machine refuses (unpausing an agent that is not paused) is a 409 with its reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from controller.agents.machine import (
    AgentEvent,
    EndWrapup,
    LogIn,
    LogOut,
    Pause,
    Refusal,
    Unpause,
)
from controller.agents.repository import StatusLogRepository
from controller.agents.supervision import CallElsewhere, SupervisionMode
from controller.api.auth import json_body, json_error, require_token
from controller.api.keys import AGENT_STATUS, AGENTS, CONFIG, STORE, SUPERVISION
from controller.api.query import timestamp
from controller.asterisk.ami import AmiError
from controller.inbound.agents import AgentError, QueueMembership

_AGENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def _agent_id(request: web.Request) -> str:
    agent_id = request.match_info["agent_id"]
    if not _AGENT_ID.match(agent_id):
        raise web.HTTPBadRequest(
            text='{"error": "agent id must be 1-40 letters, digits, _ or -"}',
            content_type="application/json",
        )
    return agent_id


async def list_agents(request: web.Request) -> web.Response:
    return web.json_response({"agents": await request.app[AGENTS].list_agents()})


async def agent_stats(request: web.Request) -> web.Response:
    """``callctl agent stats --json`` over HTTP: from ``since`` (default 24 h ago) to now."""
    now = datetime.now(UTC)
    since = timestamp(request, "since") or now - timedelta(days=1)
    stats = await StatusLogRepository(request.app[STORE]).stats(
        request.app[CONFIG].inbound.wrapup_seconds(), since, now)
    return web.json_response({"since": since.isoformat(), "until": now.isoformat(),
                              "agents": [row.as_row() for row in stats]})


@require_token
async def login(request: web.Request) -> web.Response:
    agent_id = _agent_id(request)
    body = await json_body(request)
    raw = body.get("queues")
    if raw is not None and not (
        isinstance(raw, list) and all(isinstance(q, str) and q for q in raw)
    ):
        return json_error(400, "'queues' must be a list of queue names")
    memberships = [QueueMembership(q) for q in raw] if raw else None
    refused = await _apply(request, agent_id, LogIn(), memberships)
    if refused is not None:
        return refused
    queues = await request.app[AGENT_STATUS].queues_of(agent_id)
    return web.json_response({"agent_id": agent_id, "logged_in": True, "queues": list(queues)})


async def _apply(
    request: web.Request, agent_id: str, event: AgentEvent,
    queues: list[QueueMembership] | None = None, body: dict[str, Any] | None = None,
) -> web.Response | None:
    """Carry ``event`` out; the error response when it cannot be, None when done. A body
    naming a ``supervisor`` acts for that supervisor: it must supervise the agent's team."""
    supervisor = (body or {}).get("supervisor")
    if supervisor is not None:
        if supervisor not in request.app[CONFIG].agents.team_supervisors(agent_id):
            return json_error(403, f"{supervisor} is not a supervisor of agent {agent_id}'s team")
    try:
        decision = await request.app[AGENT_STATUS].apply(agent_id, event, queues,
                                                         by=supervisor or "")
    except (AgentError, AmiError) as error:
        return json_error(409, str(error))
    if isinstance(decision, Refusal):
        return json_error(409, f"agent {agent_id}: {decision.why}")
    return None


@require_token
async def logout(request: web.Request) -> web.Response:
    agent_id = _agent_id(request)
    refused = await _apply(request, agent_id, LogOut(), body=await json_body(request))
    return refused or web.json_response({"agent_id": agent_id, "logged_in": False})


async def _set_pause(request: web.Request, paused: bool) -> web.Response:
    agent_id = _agent_id(request)
    body = await json_body(request)
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 40:
        return json_error(400, "'reason' must be a string of at most 40 characters")
    refused = await _apply(request, agent_id, Pause(reason) if paused else Unpause(),
                           body=body)
    return refused or web.json_response(
        {"agent_id": agent_id, "paused": paused, "reason": reason if paused else ""})


@require_token
async def pause(request: web.Request) -> web.Response:
    return await _set_pause(request, True)


@require_token
async def unpause(request: web.Request) -> web.Response:
    return await _set_pause(request, False)


@require_token
async def end_wrapup(request: web.Request) -> web.Response:
    """``*47`` over HTTP (a CRM's "ready" button): the agent takes the next call now, on
    every node (the others follow the store)."""
    agent_id = _agent_id(request)
    refused = await _apply(request, agent_id, EndWrapup(), body=await json_body(request))
    return refused or web.json_response({"agent_id": agent_id, "wrapup_ended": True})


@require_token
async def supervise(request: web.Request) -> web.Response:
    body = await json_body(request)
    supervisor, agent_id, mode = body.get("supervisor"), body.get("agent"), body.get("mode")
    if not all(isinstance(value, str) and _AGENT_ID.match(value)
               for value in (supervisor, agent_id)):
        return json_error(400, "'supervisor' and 'agent' must be agent ids")
    if mode not in set(SupervisionMode):
        return json_error(400, f"'mode' must be one of {', '.join(SupervisionMode)}")
    try:
        refused = await request.app[SUPERVISION].ring_supervisor(
            str(supervisor), str(agent_id), SupervisionMode(str(mode)))
    except (AmiError, CallElsewhere) as error:
        return json_error(409, str(error))
    if refused is not None:
        return json_error(403, refused)
    return web.json_response({"supervisor": supervisor, "agent": agent_id, "mode": mode,
                              "ringing": True})


@require_token
async def supervision_log(request: web.Request) -> web.Response:
    since_text = request.query.get("since")
    try:
        since = (datetime.fromisoformat(since_text) if since_text
                 else datetime.now(UTC) - timedelta(days=1))
    except ValueError:
        return json_error(400, "'since' must be an ISO 8601 time")
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    sessions = await request.app[SUPERVISION].sessions(since)
    return web.json_response({"sessions": [
        {"session_id": s.session_id, "supervisor": s.supervisor, "agent_id": s.agent_id,
         "mode": s.mode.value, "spied_channel": s.spied_channel, "refused": s.refused,
         "started_at": s.started_at.isoformat(),
         "ended_at": None if s.ended_at is None else s.ended_at.isoformat()}
        for s in sessions]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/agents", list_agents)
    app.router.add_get("/api/v1/agents/stats", agent_stats)
    app.router.add_post("/api/v1/agents/{agent_id}/login", login)
    app.router.add_post("/api/v1/agents/{agent_id}/logout", logout)
    app.router.add_post("/api/v1/agents/{agent_id}/pause", pause)
    app.router.add_post("/api/v1/agents/{agent_id}/unpause", unpause)
    app.router.add_post("/api/v1/agents/{agent_id}/end-wrapup", end_wrapup)
    app.router.add_post("/api/v1/supervise", supervise)
    app.router.add_get("/api/v1/supervision", supervision_log)
