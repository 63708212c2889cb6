"""``/healthz`` and ``/metrics``: what load balancers, supervisors and Prometheus read."""

from __future__ import annotations

from aiohttp import web

from controller.api.keys import CONTROLLER, STORE


async def healthz(request: web.Request) -> web.Response:
    """200 only when AMI (connected and resynced), ARI and the store all answer."""
    controller = request.app[CONTROLLER]
    store = request.app.get(STORE)
    status = {
        "ami": controller.ami.connected and controller.sync.synced,
        "ari": controller.ari.connected,
        "store": store is not None and await store.ping(),
    }
    healthy = all(status.values())
    return web.json_response(
        {"status": "ok" if healthy else "degraded", **status}, status=200 if healthy else 503
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
