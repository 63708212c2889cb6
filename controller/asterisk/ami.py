"""AMI client: panoramisk's parser and action matching, with our own connection lifecycle.

panoramisk 1.4 is usable for framing and matching responses, but its connection handling is
unsafe for a dialer (see the shared testbed notes): after a reconnect it re-sends every action
that had no answer (an Originate went out twice), it reconnects on its own fixed timer, actions
have no timeout and its Ping never checks the Pong. This wrapper therefore:

- owns the connect / login / reconnect loop, with capped exponential backoff;
- marks every action "forgettable", so panoramisk never queues anything for re-sending; an action
  in flight when the connection drops fails at once with ``AmiDisconnected``;
- puts a timeout on every action (``AmiTimeout``);
- runs a ping watchdog that drops the connection when a Ping goes unanswered;
- sends every Originate with ``Async: true`` (a synchronous Originate makes panoramisk raise and
  drop the connection) and with a caller-chosen ``ChannelId``, so the caller can reconcile an
  Originate whose answer was lost by looking for that channel instead of dialing again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import panoramisk

from controller.config import AmiConfig
from controller.logs import get_logger
from controller.tasks import TaskSet

log = get_logger("ami")

Event = Mapping[str, str]
EventHandler = Callable[[Event], None]
ConnectionHandler = Callable[[bool], Awaitable[None]]
# Events no component uses; TestEvent comes from Asterisk builds with the test framework.
UNUSED_EVENTS = ("VarSet", "TestEvent")


class AmiError(Exception):
    """Asterisk answered an action with an error."""


class AmiTimeout(AmiError):
    """No answer within the action timeout."""


class AmiDisconnected(AmiError):
    """The action could not be sent, or the connection dropped before its answer."""


class _ForgetEverything:
    """panoramisk re-sends actions whose name is not in ``forgetable_actions``: we list all."""

    def __contains__(self, _item: object) -> bool:
        return True


class _Manager(panoramisk.Manager):
    """panoramisk's Manager minus its own reconnect timer and pinger."""

    def __init__(self, on_lost: Callable[[], None], **config: Any) -> None:
        super().__init__(**config)
        self._on_lost = on_lost

    def connection_made(self, connecting: asyncio.Future[Any]) -> None:
        # panoramisk schedules its own reconnect when connecting fails; our run loop does that.
        if connecting.cancelled() or connecting.exception() is not None:
            return
        super().connection_made(connecting)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        self._on_lost()

    def ping(self) -> None:
        """Our own watchdog pings (and checks the Pong); panoramisk's timer does nothing."""


class AmiClient:
    def __init__(
        self,
        config: AmiConfig,
        on_event: EventHandler,
        on_connection: ConnectionHandler,
    ) -> None:
        self._config = config
        self._on_event = on_event
        self._on_connection = on_connection
        self._manager: _Manager | None = None
        self._lost = asyncio.Event()
        self._pending: set[asyncio.Future[Any]] = set()
        self.connected = False
        self.connects = 0
        self._watchdogs = TaskSet("ami")

    # -- connection lifecycle -------------------------------------------------------------

    async def run(self) -> None:
        """Connect, log in, serve until the connection drops, back off, repeat; until cancelled."""
        delay = 0.1
        while True:
            try:
                await self._connect()
            except (OSError, AmiError, TimeoutError) as error:
                log.warning(
                    "ami.connect_failed",
                    error=str(error) or type(error).__name__,
                    retry_in=round(delay, 2),
                )
                self._drop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.reconnect_max_delay)
                continue
            delay = 0.1
            self.connected = True
            self.connects += 1
            log.info("ami.connected", host=self._config.host, port=self._config.port)
            watchdog = self._watchdogs.spawn(self._watchdog())  # a failure is logged
            try:
                await self._on_connection(True)
                await self._lost.wait()
            finally:
                watchdog.cancel()
                self.connected = False
                self._drop()
            log.warning("ami.disconnected")
            await self._on_connection(False)

    async def _connect(self) -> None:
        self._lost = asyncio.Event()
        manager = _Manager(
            on_lost=self._mark_lost,
            host=self._config.host,
            port=self._config.port,
            username=self._config.username,
            secret=self._config.secret.get_secret_value(),
            forgetable_actions=_ForgetEverything(),
            ping_delay=10**9,
            loop=asyncio.get_running_loop(),
        )
        manager.register_event("*", self._dispatch)
        self._manager = manager
        timeout = self._config.action_timeout
        async with asyncio.timeout(timeout):
            await manager.connect()
        if not manager._connected or manager.protocol is None:
            raise AmiDisconnected(f"cannot connect to {self._config.host}:{self._config.port}")
        login = manager.authenticated_future
        if login is None:
            raise AmiError("no login was sent")
        async with asyncio.timeout(timeout):
            response = await asyncio.shield(login)
        if not getattr(response, "success", False):
            raise AmiError(f"login refused: {response.get('Message', 'no message')}")
        await self._filter_unused_events()

    async def _filter_unused_events(self) -> None:
        """Have Asterisk drop, for this session, the events nothing here reads: under load they
        were over half the stream (a VarSet per channel variable set), all parsed on our loop."""
        for event in UNUSED_EVENTS:
            try:
                await self.action("Filter", Operation="Add", Filter=f"!Event: {event}")
            except AmiError as error:  # e.g. no "system" write permission: only slower
                log.warning("ami.filter_refused", ami_event=event, error=str(error))
                return

    def _mark_lost(self) -> None:
        self._lost.set()
        for future in self._pending:
            if not future.done():
                future.set_exception(AmiDisconnected("connection lost before the answer"))

    def _drop(self) -> None:
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.callbacks.clear()
            manager.patterns.clear()
            try:
                manager.close()
            except Exception as error:  # the connection is being dropped anyway: note, go on
                log.warning("ami.close_failed", error=repr(error))
        self._mark_lost()

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(self._config.ping_interval)
            try:
                await self.action("Ping")
            except AmiError as error:
                log.warning("ami.ping_failed", error=str(error) or type(error).__name__)
                self._mark_lost()
                return

    def force_reconnect(self) -> None:
        """Drop the connection now (the run loop reconnects); used by tests and the watchdog."""
        manager = self._manager
        if manager is not None and manager.protocol is not None:
            manager.protocol.transport.close()

    def _dispatch(self, _manager: object, message: Event) -> None:
        try:
            self._on_event(message)
        except Exception:  # a bad event must never kill the connection
            log.exception("ami.event_handler_failed", ami_event=message.get("Event"))

    # -- actions --------------------------------------------------------------------------

    async def action(self, name: str, as_list: bool | None = False, **params: Any) -> Any:
        """Send one action and wait for its answer (a Message, or a list for event lists).

        ``as_list=None`` lets panoramisk tell from the answer: for actions like DBGet that
        answer a list on success but a single ``Response: Error`` otherwise (forcing a list
        would wait forever for the error's event list)."""
        manager = self._manager
        if manager is None or manager.protocol is None or self._lost.is_set():
            raise AmiDisconnected(f"{name}: AMI is not connected")
        fields = {"Action": name, **{k: v for k, v in params.items() if v is not None}}
        future = manager.send_action(fields, as_list=as_list)
        self._pending.add(future)
        try:
            async with asyncio.timeout(self._config.action_timeout):
                answer = await asyncio.shield(future)
        except TimeoutError:
            raise AmiTimeout(f"{name}: no answer within {self._config.action_timeout}s") from None
        finally:
            self._pending.discard(future)
            if not future.done():
                future.cancel()
        first = answer[0] if isinstance(answer, list) else answer
        if first.get("Response") in ("Error", "Failure", "Fail"):
            raise AmiError(f"{name}: {first.get('Message', 'error')}")
        return answer

    async def event_list(self, name: str, **params: Any) -> list[Event]:
        """Run a list action (QueueStatus, CoreShowChannels) and return its events, sans markers."""
        answer = await self.action(name, as_list=True, **params)
        messages = answer if isinstance(answer, list) else [answer]
        return [m for m in messages[1:] if "Event" in m and not m["Event"].endswith("Complete")]

    async def originate(
        self,
        channel: str,
        channel_id: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int | None = None,
        application: str | None = None,
        data: str | None = None,
        timeout_s: float = 30,
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        action_id: str | None = None,
    ) -> None:
        """Queue an Originate in Asterisk. Sent once: never retried, by us or by panoramisk.

        Returns when Asterisk has accepted it; the call's fate arrives as events for
        ``channel_id`` (Newchannel, Hangup with its cause) and an OriginateResponse carrying
        ``action_id`` (pass the same id to match it).
        """
        variable = [f"{k}={v}" for k, v in (variables or {}).items()] or None
        await self.action(
            "Originate",
            Channel=channel,
            ChannelId=channel_id,
            Context=context,
            Exten=exten,
            Priority=priority,
            Application=application,
            Data=data,
            Timeout=int(timeout_s * 1000),
            CallerID=caller_id,
            Variable=variable,
            Async="true",
            ActionID=action_id,
        )

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1) -> None:
        await self.action(
            "Redirect", Channel=channel, Context=context, Exten=exten, Priority=priority
        )

    async def hangup(self, channel: str, cause: int = 16) -> None:
        await self.action("Hangup", Channel=channel, Cause=cause)

    # the recorder's MixMonitorPort
    async def start_mixmonitor(self, channel: str, file: str, options: str) -> None:
        await self.action("MixMonitor", Channel=channel, File=file, Options=options or None)

    async def mute_mixmonitor(self, channel: str, direction: str, on: bool) -> None:
        await self.action(
            "MixMonitorMute", Channel=channel, Direction=direction, State="1" if on else "0"
        )

    async def stop_mixmonitor(self, channel: str) -> None:
        await self.action("StopMixMonitor", Channel=channel)

    async def command(self, command: str) -> str:
        answer = await self.action("Command", Command=command)
        output = answer.get("Output", "")
        return "\n".join(output) if isinstance(output, list) else str(output)
