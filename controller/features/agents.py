"""Agents: login, logout and pause over ``/api/v1/agents``, kept in step with Asterisk's queue
members after every resync and when a member appears."""

from __future__ import annotations

from aiohttp import web

from controller.api import agents, keys
from controller.features.core import Core
from controller.inbound.agents import AgentService, QueueMembership


def install(app: web.Application, core: Core) -> AgentService:
    config = core.config
    service = AgentService(
        core.ami,
        core.store,
        core.model,
        lambda agent_id: [QueueMembership(q, p) for q, p in config.queues_of_agent(agent_id)],
    )
    core.sync.add_resync_hook(service.reconcile)
    core.sync.add_listener(service.on_ami_event)
    app[keys.AGENTS] = service
    agents.add_routes(app)
    return service
