"""Keeps the live model in step with Asterisk over AMI.

On every (re)connect: take a snapshot (QueueStatus + CoreShowChannels) and rebuild the model.
Events that arrive while the snapshot is being taken are held and applied after it, so a change
racing the snapshot is neither lost nor applied to a model that is about to be replaced.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from controller.asterisk.ami import AmiClient, AmiError
from controller.asterisk.events import (
    AmiEvent,
    CoreShowChannel,
    QueueEntry,
    QueueMember,
    QueueParams,
    RejectedEvent,
    RejectHandler,
    log_rejected,
    parse_ami,
)
from controller.logs import get_logger
from controller.state.model import LiveModel

log = get_logger("state")


class AmiStateSync:
    def __init__(self, model: LiveModel, on_rejected: RejectHandler = log_rejected) -> None:
        self.model = model
        self.ami: AmiClient | None = None
        self.synced = False
        self._on_rejected = on_rejected
        self._held: list[AmiEvent] | None = None
        self._listeners: list[Callable[[AmiEvent], None]] = []
        self._after_resync: list[Callable[[], Awaitable[None]]] = []

    def add_resync_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run after every successful resync (agent reconciliation, dialer reconciliation)."""
        self._after_resync.append(hook)

    def add_listener(self, listener: Callable[[AmiEvent], None]) -> None:
        """Other services that want AMI events (router, agents, recorder, dialer), after the
        model has applied each one."""
        self._listeners.append(listener)

    def on_event(self, event: AmiEvent) -> None:
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
            queues = self._parsed(await self.ami.event_list("QueueStatus"))
            channels = self._parsed(await self.ami.event_list("CoreShowChannels"))
        except AmiError as error:
            log.warning("state.resync_failed", error=str(error))
            self._held = None
            self.ami.force_reconnect()
            return
        self.model.load_snapshot(
            [e for e in queues if isinstance(e, QueueParams | QueueMember | QueueEntry)],
            [e for e in channels if isinstance(e, CoreShowChannel)],
        )
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

    def _parsed(self, messages: list[Mapping[str, Any]]) -> list[AmiEvent]:
        """A list action's answer as typed events; a malformed entry is left out."""
        events = []
        for message in messages:
            try:
                events.append(parse_ami(message))
            except RejectedEvent as rejected:
                self._on_rejected(rejected)
        return events
