"""``/healthz`` and ``/metrics``: what load balancers, supervisors and Prometheus read."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from controller.api.keys import COMPONENTS, METRICS, SUPERVISOR
from controller.metrics.registry import CONTENT_TYPE


async def healthz(request: web.Request) -> web.Response:
    """200 only when AMI (connected and resynced), ARI and the store all answer and no
    supervised task is down; otherwise 503 ``degraded``, naming the tasks waiting for their
    restart in ``tasks_down``."""
    up = await request.app[COMPONENTS]()
    down = request.app[SUPERVISOR].down()
    status = {"ami": up.ami, "ari": up.ari, "store": up.store}
    healthy = all(status.values()) and not down
    body: dict[str, Any] = {"status": "ok" if healthy else "degraded", **status}
    if down:
        body["tasks_down"] = list(down)
    return web.json_response(body, status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
