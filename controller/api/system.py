"""``/healthz`` and ``/metrics``: what load balancers, supervisors and Prometheus read; and the
answer of every route while the store is unreachable (503, not a 500)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from controller.api.auth import Handler, json_error
from controller.api.keys import COMPONENTS, METRICS, SUPERVISOR, WRITES
from controller.logs import get_logger
from controller.metrics.registry import CONTENT_TYPE
from controller.store.base import StoreError

log = get_logger("api")

# what a client told 503 waits before asking again: a PostgreSQL restart takes about a second
STORE_RETRY_AFTER_S = 2


async def healthz(request: web.Request) -> web.Response:
    """200 only when AMI (connected and resynced), ARI and the store all answer and no
    supervised task is down; otherwise 503 ``degraded``, naming the tasks waiting for their
    restart in ``tasks_down``. ``store_writes_waiting`` counts the writes kept for a store that
    did not answer, while any wait (they are replayed once it does)."""
    up = await request.app[COMPONENTS]()
    down = request.app[SUPERVISOR].down()
    status = {"ami": up.ami, "ari": up.ari, "store": up.store}
    healthy = all(status.values()) and not down
    body: dict[str, Any] = {"status": "ok" if healthy else "degraded", **status}
    if down:
        body["tasks_down"] = list(down)
    if waiting := len(request.app[WRITES]):
        body["store_writes_waiting"] = waiting
    return web.json_response(body, status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@web.middleware
async def store_unavailable(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request whose store read or write finds the store unreachable answers 503 with
    ``Retry-After``: nothing is wrong with the request, and the store is usually back soon."""
    try:
        return await handler(request)
    except StoreError as error:
        log.warning("api.store_unavailable", method=request.method, path=request.path,
                    error=str(error))
        response = json_error(503, "the store is unavailable; try again shortly")
        response.headers["Retry-After"] = str(STORE_RETRY_AFTER_S)
        return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
