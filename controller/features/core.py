"""The parts every feature builds on, and the one place Asterisk events enter the services."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from controller.asterisk.ami import AmiClient
from controller.asterisk.ari import AriClient
from controller.asterisk.events import (
    PlaybackFinished,
    RejectedEvent,
    StasisStart,
    log_rejected,
    parse_ami,
    parse_ari,
)
from controller.config import Config
from controller.logs import get_logger
from controller.metrics.registry import Metrics, SnapshotProviders
from controller.metrics.snapshot import ComponentUp
from controller.state.model import LiveModel
from controller.state.sync import AmiStateSync
from controller.store.backlog import WriteBacklog
from controller.store.base import Database
from controller.tasks import Supervisor, TaskFactory

log = get_logger("app")

StasisHandler = Callable[[StasisStart], None]
PlaybackListener = Callable[[PlaybackFinished], None]


class Core:
    """Config, store (with the backlog of writes it could not take yet), live model, the AMI
    and ARI clients, metrics and the task supervisor.

    AMI messages are parsed here, once, and handed to the state sync (which applies them to
    the model, then to every listener); ARI ``StasisStart`` events go to the handler its
    first Stasis argument names (``inbound``, ``dialer``, ``agent``).
    """

    def __init__(self, config: Config, store: Database) -> None:
        self.config = config
        self.store = store
        self.writes = WriteBacklog()
        self.model = LiveModel(clock=time.time, queue_wrapup=config.inbound.wrapup_seconds())
        self.metrics = Metrics(
            SnapshotProviders(components=self.components_up), queues=config.inbound.queues
        )
        self.supervisor = Supervisor(self.metrics)
        self.sync = AmiStateSync(self.model, on_rejected=self._rejected)
        self.ami = AmiClient(config.ami, self.on_ami_message, self.sync.on_connection)
        self.sync.ami = self.ami
        self.ari = AriClient(config.ari, self.on_ari_message, _on_ari_connection)
        self._stasis: dict[str, StasisHandler] = {}
        self._playback_listeners: list[PlaybackListener] = []
        self.supervise("ami", self.ami.run)
        self.supervise("ari", self.ari.run)
        self.supervise("store-writes", self.writes.run)

    def supervise(self, name: str, factory: TaskFactory) -> None:
        """Run ``factory()`` while the app runs; restart it whenever it fails."""
        self.supervisor.add(name, factory)

    def on_stasis(self, entry: str, handler: StasisHandler) -> None:
        """Channels entering our Stasis app with ``entry`` as first argument go to ``handler``."""
        if entry in self._stasis:
            raise ValueError(f"Stasis entry {entry!r} already has a handler")
        self._stasis[entry] = handler

    def on_playback_finished(self, listener: PlaybackListener) -> None:
        """Every ``PlaybackFinished`` of our app's channels goes to ``listener`` too."""
        self._playback_listeners.append(listener)

    async def components_up(self) -> ComponentUp:
        return ComponentUp(
            ami=self.ami.connected and self.sync.synced,
            ari=self.ari.connected,
            store=await self.store.ping(),
        )

    def _rejected(self, rejected: RejectedEvent) -> None:
        log_rejected(rejected)
        self.metrics.event_rejected(rejected.source, rejected.reason)

    def on_ami_message(self, message: Mapping[str, str]) -> None:
        """The AMI client's event callback: parse, count, hand to the state sync."""
        with self.metrics.event_processing():
            self.metrics.ami_event(message.get("Event", "unknown"))
            try:
                event = parse_ami(message)
            except RejectedEvent as rejected:
                self._rejected(rejected)
                return
            self.sync.on_event(event)

    def on_ari_message(self, message: object) -> None:
        """The ARI client's event callback: parse, count, route ``StasisStart`` by its entry
        and ``PlaybackFinished`` to its listeners."""
        with self.metrics.event_processing():
            try:
                event = parse_ari(message)
            except RejectedEvent as rejected:
                self._rejected(rejected)
                return
            if isinstance(event, PlaybackFinished):
                for listener in self._playback_listeners:
                    listener(event)
                return
            if not isinstance(event, StasisStart):
                return
            handler = self._stasis.get(event.args[0] if event.args else "")
            if handler is None:
                log.warning(
                    "ari.unknown_stasis_entry", args=list(event.args), channel=event.channel.id
                )
                return
            handler(event)


async def _on_ari_connection(_up: bool) -> None:
    """Nothing to do: ARI's state is re-read by the client itself on every connect."""
