"""``/healthz`` and ``/metrics``: what load balancers, supervisors and Prometheus read."""

from __future__ import annotations

from aiohttp import web

from controller.api.keys import CONTROLLER
from controller.metrics.registry import CONTENT_TYPE


async def healthz(request: web.Request) -> web.Response:
    """200 only when AMI (connected and resynced), ARI and the store all answer."""
    up = await request.app[CONTROLLER].components_up()
    status = {"ami": up.ami, "ari": up.ari, "store": up.store}
    healthy = all(status.values())
    return web.json_response(
        {"status": "ok" if healthy else "degraded", **status}, status=200 if healthy else 503
    )


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[CONTROLLER].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
