"""An AMI connection of a bench's or test's own, beside the controller's: it sees every event
Asterisk sends (with ``timestampevents``, on Asterisk's own clock) and can originate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from controller.asterisk.ami import AmiClient, EventHandler
from controller.config import AmiConfig


@asynccontextmanager
async def ami_listener(config: AmiConfig, on_event: EventHandler,
                       within_s: float = 10.0) -> AsyncIterator[AmiClient]:
    """A connection feeding ``on_event`` every event, connected before the body runs."""

    async def ignore(_up: bool) -> None:
        return None

    client = AmiClient(config, on_event, ignore)
    running = asyncio.create_task(client.run())
    try:
        deadline = time.monotonic() + within_s
        while not client.connected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no AMI connection to {config.host}:{config.port}")
            await asyncio.sleep(0.05)
        yield client
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
