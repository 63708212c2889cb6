"""System: ``/healthz``, ``/metrics``, and 503 from any route while the store is unreachable."""

from __future__ import annotations

from aiohttp import web

from controller.api import keys, system
from controller.features.core import Core


def install(app: web.Application, core: Core) -> None:
    app[keys.CONFIG] = core.config
    app[keys.STORE] = core.store
    app[keys.WRITES] = core.writes
    app[keys.COMPONENTS] = core.components_up
    app[keys.SUPERVISOR] = core.supervisor
    app[keys.METRICS] = core.metrics
    app.cleanup_ctx.append(core.supervisor.cleanup_ctx)
    app.middlewares.append(system.store_unavailable)
    system.add_routes(app)
