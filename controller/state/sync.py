"""Keeps the live model in step with Asterisk over AMI.

On every (re)connect: take a snapshot (QueueStatus + CoreShowChannels) and rebuild the model.
Events that arrive while the snapshot is being taken are held and applied after it, so a change
racing the snapshot is neither lost nor applied to a model that is about to be replaced.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from controller.asterisk.ami import AmiClient, AmiError, Event
from controller.logs import get_logger
from controller.state.model import LiveModel

log = get_logger("state")


class AmiStateSync:
    def __init__(self, model: LiveModel) -> None:
        self.model = model
        self.ami: AmiClient | None = None
        self.synced = False
        self._held: list[Event] | None = None
        self._listeners: list[Callable[[Event], None]] = []
        self._after_resync: list[Callable[[], Awaitable[None]]] = []

    def add_resync_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run after every successful resync (agent reconciliation, dialer reconciliation)."""
        self._after_resync.append(hook)

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Other services that want raw AMI events (dialer, recorder, metrics)."""
        self._listeners.append(listener)

    def on_event(self, event: Event) -> None:
        if self._held is not None:
            self._held.append(event)
        else:
            self.model.apply(event)
        for listener in self._listeners:
            listener(event)

    async def on_connection(self, up: bool) -> None:
        self.synced = False
        if not up or self.ami is None:
            return
        self._held = []
        try:
            queues = await self.ami.event_list("QueueStatus")
            channels = await self.ami.event_list("CoreShowChannels")
        except AmiError as error:
            log.warning("state.resync_failed", error=str(error))
            self._held = None
            self.ami.force_reconnect()
            return
        self.model.load_snapshot(queues, channels)
        held, self._held = self._held, None
        for event in held:
            self.model.apply(event)
        for hook in self._after_resync:
            try:
                await hook()
            except Exception:  # one failing hook must not keep the others from running
                log.exception("state.resync_hook_failed", hook=getattr(hook, "__qualname__", ""))
        self.synced = True
        log.info(
            "state.resynced",
            queues=len(self.model.queues),
            channels=len(self.model.channels),
            members=sum(len(q.members) for q in self.model.queues.values()),
            callers=sum(len(q.callers) for q in self.model.queues.values()),
        )
