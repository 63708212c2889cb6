"""ARI client on plain aiohttp: REST calls plus the events WebSocket, with reconnect and resync.

The ari-py library cannot be used (Python 2 code: it fails to import on 3.11, see the README's
dependency notes), and the asyncio forks either lack reconnect or flood their logs when the
socket closes. ARI is small enough to speak directly: JSON over HTTP, events over one
WebSocket. Connecting the WebSocket is what registers our Stasis application, so while it is
down the dialplan's ``Stasis()`` fails immediately and the static fallback takes over.

After every (re)connect the client re-reads channels and bridges, so the owner's view is
rebuilt from Asterisk's truth rather than from events that may have been missed.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from controller.config import AriConfig
from controller.logs import get_logger

log = get_logger("ari")

# one decoded WebSocket message: a JSON object if ARI is well, anything else if not (the
# owner's parser, ``events.parse_ari``, rejects and counts what is not an event)
EventHandler = Callable[[object], None]
ConnectionHandler = Callable[[bool], Awaitable[None]]


class AriError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"ARI {status}: {message}")
        self.status = status


class AriClient:
    def __init__(
        self, config: AriConfig, on_event: EventHandler, on_connection: ConnectionHandler
    ) -> None:
        self._config = config
        self._on_event = on_event
        self._on_connection = on_connection
        self._session: aiohttp.ClientSession | None = None
        self.connected = False
        self.channels: dict[str, dict[str, Any]] = {}
        self.bridges: dict[str, dict[str, Any]] = {}

    @property
    def app(self) -> str:
        return self._config.app

    def _auth_header(self) -> dict[str, str]:
        pair = f"{self._config.username}:{self._config.password.get_secret_value()}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    async def run(self) -> None:
        """Keep the events WebSocket connected (backoff on failure) until cancelled."""
        timeout = aiohttp.ClientTimeout(total=self._config.request_timeout)
        async with aiohttp.ClientSession(headers=self._auth_header(), timeout=timeout) as session:
            self._session = session
            delay = 0.1
            while True:
                try:
                    await self._serve(session)
                    delay = 0.1
                except (aiohttp.ClientError, OSError, TimeoutError, AriError) as error:
                    log.warning(
                        "ari.connect_failed",
                        error=str(error) or type(error).__name__,
                        retry_in=round(delay, 2),
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.reconnect_max_delay)

    async def _serve(self, session: aiohttp.ClientSession) -> None:
        url = self._config.url.rstrip("/") + "/ari/events"
        params = {"app": self._config.app, "subscribeAll": "false"}
        async with session.ws_connect(
            url, params=params, heartbeat=5.0, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
        ) as ws:
            self.connected = True
            try:
                await self.resync()
                log.info("ari.connected", app=self._config.app, channels=len(self.channels))
                await self._on_connection(True)
                async for message in ws:
                    if message.type is aiohttp.WSMsgType.TEXT:
                        self._dispatch(message.data)
                    elif message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                        break
            finally:
                was_connected, self.connected = self.connected, False
                if was_connected:
                    log.warning("ari.disconnected")
                    await self._on_connection(False)

    async def resync(self) -> None:
        channels = await self.request("GET", "/channels")
        bridges = await self.request("GET", "/bridges")
        self.channels = {c["id"]: c for c in channels}
        self.bridges = {b["id"]: b for b in bridges}

    def _dispatch(self, text: str) -> None:
        try:
            event: object = json.loads(text)
        except ValueError:
            event = text  # not JSON: handed on as it is, for the owner to reject and count
        kind = ""
        if isinstance(event, dict):
            kind = str(event.get("type", ""))
            self._note(kind, event)
        try:
            self._on_event(event)
        except Exception:  # one bad event must not drop the WebSocket
            log.exception("ari.event_handler_failed", type=kind)

    def _note(self, kind: str, event: Mapping[str, Any]) -> None:
        """Keep the channels and bridges the event shows."""
        channel = event.get("channel")
        if isinstance(channel, dict) and "id" in channel:
            if kind == "ChannelDestroyed":
                self.channels.pop(channel["id"], None)
            else:
                self.channels[channel["id"]] = channel
        bridge = event.get("bridge")
        if isinstance(bridge, dict) and "id" in bridge:
            if kind == "BridgeDestroyed":
                self.bridges.pop(bridge["id"], None)
            else:
                self.bridges[bridge["id"]] = bridge

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        session = self._session
        if session is None:
            raise AriError(503, "ARI client is not running")
        url = self._config.url.rstrip("/") + "/ari" + path
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        async with session.request(method, url, params=query, json=body) as response:
            if response.status == 204:
                return None
            text = await response.text()
            if response.status >= 400:
                try:
                    text = (await response.json(content_type=None)).get("message", text)
                except ValueError:
                    pass  # not ARI's JSON error body: the AriError below carries the plain text
                raise AriError(response.status, text)
            return await response.json(content_type=None) if text else None

    # -- the few operations the services use ----------------------------------------------

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int = 1
    ) -> None:
        await self.request(
            "POST",
            f"/channels/{channel_id}/continue",
            {"context": context, "extension": extension, "priority": priority},
        )

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.request(
            "POST", f"/channels/{channel_id}/variable", {"variable": name, "value": value}
        )

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", {"reason": reason})
