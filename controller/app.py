"""Wiring only: builds the services and adapters from the config and runs them on one loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from controller.api import agents, campaigns, keys, queues, recordings, system
from controller.api.recordings import RECORDER
from controller.asterisk.ami import AmiClient
from controller.asterisk.ari import AriClient
from controller.config import Config
from controller.dialer.repository import DialerRepository
from controller.dialer.runner import DialerService
from controller.inbound.agents import AgentService, QueueMembership
from controller.inbound.gauges import QueueGaugeProvider
from controller.inbound.router import InboundRouter
from controller.logs import get_logger
from controller.metrics.registry import Metrics, SnapshotProviders
from controller.metrics.snapshot import ComponentUp
from controller.recording.recorder import Recorder
from controller.recording.repository import RecordingRepository
from controller.recording.retention import run_daily
from controller.state.model import LiveModel
from controller.state.sync import AmiStateSync
from controller.store.base import Database
from controller.store.sqlite import open_store
from controller.tasks import TaskSet

log = get_logger("app")


class Controller:
    """The running controller's parts, shared with the HTTP handlers via ``keys.CONTROLLER``."""

    def __init__(self, config: Config, store: Database) -> None:
        self.config = config
        self.store = store
        self.model = LiveModel(clock=time.time)
        self._tasks = TaskSet("controller")
        self.sync = AmiStateSync(self.model)
        self.ami = AmiClient(config.ami, self._on_ami_event, self.sync.on_connection)
        self.sync.ami = self.ami
        self.ari = AriClient(config.ari, self._on_ari_event, self._on_ari_connection)
        inbound = config.inbound
        self.metrics = Metrics(
            SnapshotProviders(
                components=self.components_up,
                queues=lambda: self._queue_gauges(),
                dialers=lambda: self.dialer.gauges(),
            ),
            queues=inbound.queues,
        )
        self.recorder = Recorder(
            config.recording, RecordingRepository(store), self.ami, lambda: datetime.now(UTC),
            on_result=self.metrics.recording,
        )
        self.agents = AgentService(
            self.ami,
            store,
            self.model,
            lambda agent_id: [QueueMembership(q, p) for q, p in inbound.queues_of_agent(agent_id)],
        )
        self.sync.add_resync_hook(self.agents.reconcile)
        self.sync.add_listener(self.agents.on_ami_event)
        self.router = InboundRouter(
            inbound, self.ami, self.ari, self.model, store, self.metrics, self.recorder
        )
        self.sync.add_listener(self.router.on_ami_event)
        self.sync.add_listener(self._on_recording_event)
        self._queue_gauges = QueueGaugeProvider(
            inbound, self.model, self.router, store, config.metrics.service_level_window
        )
        self.dialer = DialerService(
            self.ami,
            self.ari,
            self.model,
            DialerRepository(store),
            self.metrics,
            worker=config.dialer.worker_id,
            agents_of_queue=lambda queue: (
                tuple(m.agent for m in inbound.queues[queue].members)
                if queue in inbound.queues
                else ()
            ),
            recorder=self.recorder,
        )
        self.sync.add_listener(self.dialer.on_ami_event)
        self.sync.add_resync_hook(self.dialer.reconcile)
        self._stasis_handlers = {
            "inbound": self.router.on_stasis_start,
            "dialer": self.dialer.on_customer_stasis,
            "agent": self.dialer.on_agent_stasis,
        }

    async def components_up(self) -> ComponentUp:
        return ComponentUp(
            ami=self.ami.connected and self.sync.synced,
            ari=self.ari.connected,
            store=await self.store.ping(),
        )

    def _on_recording_event(self, event: Mapping[str, Any]) -> None:
        if event.get("Event") in ("MixMonitorStop", "Hangup"):
            self._tasks.spawn(self.recorder.channel_ended(event.get("Channel", "")))

    def _on_ami_event(self, event: Mapping[str, Any]) -> None:
        with self.metrics.event_processing():
            self.metrics.ami_event(event.get("Event", "unknown"))
            self.sync.on_event(event)

    def _on_ari_event(self, event: Mapping[str, Any]) -> None:
        with self.metrics.event_processing():
            if event.get("type") != "StasisStart":
                return
            args = event.get("args") or []
            handler = self._stasis_handlers.get(args[0] if args else "")
            if handler is None:
                log.warning(
                    "ari.unknown_stasis_entry",
                    args=args,
                    channel=event.get("channel", {}).get("id"),
                )
                return
            handler(event)

    async def _on_ari_connection(self, up: bool) -> None:
        return None

    def background(self) -> dict[str, Coroutine[Any, Any, None]]:
        """The long-running tasks of the controller."""
        return {
            "ami": self.ami.run(),
            "ari": self.ari.run(),
            "inbound": self.router.run(),
            "dialer": self.dialer.run(),
            "recording-purge": run_daily(
                self.recorder.repo, self.config.recording, lambda: datetime.now(UTC)
            ),
        }


def build_app(controller: Controller) -> web.Application:
    app = web.Application()
    app[keys.CONFIG] = controller.config
    app[keys.STORE] = controller.store
    app[keys.CONTROLLER] = controller
    app[RECORDER] = controller.recorder

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(c, name=n) for n, c in controller.background().items()]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(lifecycle)
    for routes in (system, agents, queues, recordings, campaigns):
        routes.add_routes(app)
    return app


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
    runner = web.AppRunner(build_app(controller), access_log=None, handle_signals=False)
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
