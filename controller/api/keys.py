"""Typed keys for what the aiohttp application shares with its handlers: each handler reads the
one service it uses, never the whole controller (the features set them, see ``features/``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from controller.agents.service import AgentStatusService
    from controller.agents.supervision import SupervisionService
    from controller.callbacks.service import CallbackService
    from controller.config import Config
    from controller.inbound.agents import AgentService
    from controller.inbound.overrides import ScheduleOverrides
    from controller.metrics.registry import Metrics
    from controller.metrics.snapshot import ComponentUp
    from controller.state.model import LiveModel
    from controller.store.backlog import WriteBacklog
    from controller.store.base import Database
    from controller.tasks import Supervisor

CONFIG: web.AppKey[Config] = web.AppKey("config")
STORE: web.AppKey[Database] = web.AppKey("store")
WRITES: web.AppKey[WriteBacklog] = web.AppKey("writes")
MODEL: web.AppKey[LiveModel] = web.AppKey("model")
AGENTS: web.AppKey[AgentService] = web.AppKey("agents")
AGENT_STATUS: web.AppKey[AgentStatusService] = web.AppKey("agent_status")
SUPERVISION: web.AppKey[SupervisionService] = web.AppKey("supervision")
CALLBACKS: web.AppKey[CallbackService] = web.AppKey("callbacks")
SCHEDULE_OVERRIDES: web.AppKey[ScheduleOverrides] = web.AppKey("schedule_overrides")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
SUPERVISOR: web.AppKey[Supervisor] = web.AppKey("supervisor")
# whether AMI (connected and resynced), ARI and the store answer
COMPONENTS: web.AppKey[Callable[[], Awaitable[ComponentUp]]] = web.AppKey("components")
