"""Wiring only: builds the services and adapters from the config and runs them on one loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator

from aiohttp import web

from controller.api import agents, keys, queues, system
from controller.asterisk.ami import AmiClient
from controller.asterisk.ari import AriClient
from controller.config import Config
from controller.inbound.agents import AgentService
from controller.logs import get_logger
from controller.state.model import LiveModel
from controller.state.sync import AmiStateSync
from controller.store.base import Database
from controller.store.sqlite import open_store

log = get_logger("app")


class Controller:
    """The running controller's parts, shared with the HTTP handlers via ``keys.CONTROLLER``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store: Database | None = None
        self.model = LiveModel(clock=time.time)
        self.sync = AmiStateSync(self.model)
        self.ami = AmiClient(config.ami, self.sync.on_event, self.sync.on_connection)
        self.sync.ami = self.ami
        self.ari = AriClient(config.ari, self._on_ari_event, self._on_ari_connection)
        self.agents = AgentService(self.ami, self.db, self.model, lambda _agent_id: [])
        self.sync.add_resync_hook(self.agents.reconcile)

    def db(self) -> Database:
        if self.store is None:
            raise RuntimeError("the store is not open yet")
        return self.store

    def _on_ari_event(self, event: dict) -> None:  # type: ignore[type-arg]
        log.debug("ari.event", type=event.get("type"))

    async def _on_ari_connection(self, up: bool) -> None:
        return None


async def _run_forever(name: str, coro: object) -> AsyncIterator[None]:
    task = asyncio.create_task(coro, name=name)  # type: ignore[arg-type]
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def build_app(config: Config) -> web.Application:
    app = web.Application()
    controller = Controller(config)
    app[keys.CONFIG] = config
    app[keys.CONTROLLER] = controller

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        store = await open_store(config.store.url)
        app[keys.STORE] = controller.store = store
        yield
        controller.store = None
        await store.close()

    async def ami_ctx(_app: web.Application) -> AsyncIterator[None]:
        async for _ in _run_forever("ami", controller.ami.run()):
            yield

    async def ari_ctx(_app: web.Application) -> AsyncIterator[None]:
        async for _ in _run_forever("ari", controller.ari.run()):
            yield

    app.cleanup_ctx.extend([store_ctx, ami_ctx, ari_ctx])
    for routes in (system, agents, queues):
        routes.add_routes(app)
    return app


async def serve(config: Config, ready: asyncio.Event | None = None) -> None:
    """Run the controller until SIGTERM/SIGINT (or cancellation), then stop cleanly."""
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.http.listen, config.http.port)
    await site.start()
    log.info("controller.started", listen=config.http.listen, port=config.http.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("controller.stopping")
        await runner.cleanup()
        log.info("controller.stopped")
