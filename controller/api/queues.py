"""``/api/v1/queues``: live status of every queue (callers, waits, agents, service level)."""

from __future__ import annotations

from aiohttp import web

from controller.api.keys import CONFIG, MODEL, STORE
from controller.inbound.status import queue_status


async def list_queues(request: web.Request) -> web.Response:
    app = request.app
    config = app[CONFIG]
    queues = await queue_status(app[MODEL], app[STORE], config.inbound, config.node_name)
    return web.json_response({"queues": queues})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/queues", list_queues)
