"""Wiring only: builds the services and adapters from the config and runs them on one loop."""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

from controller.config import Config
from controller.features import agents, callbacks, dialer, inbound, nodes, recording, system
from controller.features.core import Core
from controller.logs import get_logger
from controller.store import open_store
from controller.store.base import Database

log = get_logger("app")


class Controller:
    """The app and its parts: the shared core, then each feature installed in dependency
    order (the router and the dialer start recordings). Tests read the parts from here."""

    def __init__(self, config: Config, store: Database) -> None:
        self.app = web.Application()
        core = Core(config, store)
        self.config, self.store, self.model, self.sync = config, store, core.model, core.sync
        self.ami, self.ari, self.metrics = core.ami, core.ari, core.metrics
        self.supervisor = core.supervisor
        system.install(self.app, core)
        self.recorder = recording.install(self.app, core)
        self.agents = agents.install(self.app, core)
        self.router = inbound.install(self.app, core, self.recorder)
        self.dialer = dialer.install(self.app, core, self.recorder)
        self.callbacks = callbacks.install(self.app, core, self.router)
        self.nodes = nodes.install(core, self.router)


class RunningController:
    """A started controller: its parts, and the HTTP site serving them."""

    def __init__(self, controller: Controller, runner: web.AppRunner) -> None:
        self.controller = controller
        self._runner = runner

    async def stop(self) -> None:
        log.info("controller.stopping")
        await self._runner.cleanup()
        await self.controller.store.close()
        log.info("controller.stopped")


async def start(config: Config) -> RunningController:
    """Open the store, build the services, start the background tasks and the HTTP site."""
    store = await open_store(config.store.url)
    controller = Controller(config, store)
    runner = web.AppRunner(controller.app, access_log=None, handle_signals=False)
    try:
        await runner.setup()
        await web.TCPSite(runner, config.http.listen, config.http.port).start()
    except OSError:
        await runner.cleanup()
        await store.close()
        raise
    log.info("controller.started", listen=config.http.listen, port=config.http.port)
    return RunningController(controller, runner)


async def serve(config: Config) -> None:
    """Run the controller until SIGTERM/SIGINT, then stop cleanly."""
    running = await start(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await running.stop()
