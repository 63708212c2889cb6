"""System: ``/healthz`` and ``/metrics``."""

from __future__ import annotations

from aiohttp import web

from controller.api import keys, system
from controller.features.core import Core


def install(app: web.Application, core: Core) -> None:
    app[keys.CONFIG] = core.config
    app[keys.STORE] = core.store
    app[keys.COMPONENTS] = core.components_up
    app[keys.SUPERVISOR] = core.supervisor
    app[keys.METRICS] = core.metrics
    app.cleanup_ctx.append(core.supervisor.cleanup_ctx)
    system.add_routes(app)
