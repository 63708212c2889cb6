"""Running the controller against the test Asterisk: in-process, or as a killable process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import tomli_w

from controller.app import RunningController, start
from controller.config import Config, load_config
from testbed.asterisk import AsteriskInstance

READY_TIMEOUT_S = 20.0


async def wait_for(
    check: Callable[[], Awaitable[Any] | Any], within_s: float, what: str, every: float = 0.1
) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + within_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what}")
        await asyncio.sleep(every)


async def wait_while_progressing(
    count: Callable[[], Awaitable[int]], wanted: int, stalled_s: float, what: str,
    every: float = 1.0,
) -> None:
    """Poll ``count`` until it reaches ``wanted``; fail naming ``what`` if it stays put for
    ``stalled_s``. For work whose length is the machine's speed (a campaign of hundreds of
    calls): a stuck run fails as fast as a fixed deadline would catch it, a slow one does not
    fail for being slow (the test's own timeout still bounds it)."""
    last, moved_at = -1, time.monotonic()
    while (now_count := await count()) < wanted:
        if now_count != last:
            last, moved_at = now_count, time.monotonic()
        elif time.monotonic() - moved_at > stalled_s:
            raise AssertionError(
                f"{what}: stuck at {now_count} of {wanted} for {stalled_s} s")
        await asyncio.sleep(every)


class Api:
    """A small client of the controller's HTTP API."""

    def __init__(self, config: Config) -> None:
        self.base = f"http://{config.http.listen}:{config.http.port}"
        self.token = config.http.api_token.get_secret_value()

    async def request(
        self, method: str, path: str, body: Any = None, token: str | None = "default"
    ) -> tuple[int, Any]:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.token if token == 'default' else token}"
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, self.base + path, json=body, headers=headers) as response,
        ):
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.read()

    async def healthy(self) -> bool:
        try:
            status, _ = await self.request("GET", "/healthz", token=None)
        except aiohttp.ClientError:
            return False
        return status == 200


@asynccontextmanager
async def running_controller(config: Config) -> AsyncIterator[RunningController]:
    """The controller on this test's event loop, healthy before the body runs."""
    running = await start(config)
    try:
        await wait_for(Api(config).healthy, READY_TIMEOUT_S, "the controller to be healthy")
        yield running
    finally:
        await running.stop()


def logged_events(log_file: Path, name: str | None = None) -> list[dict[str, Any]]:
    """The structured events a controller wrote to ``log_file`` (those called ``name``)."""
    events = (json.loads(line) for line in log_file.read_text().splitlines()
              if line.startswith("{"))
    return [event for event in events if name is None or event.get("event") == name]


class ControllerProcess:
    """``callctl serve`` as a separate process, for tests that kill it (SIGKILL)."""

    def __init__(
        self, config_file: Path, log_file: Path, env: dict[str, str] | None = None
    ) -> None:
        self.config_file = config_file
        self.log_file = log_file
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "controller.cli.main", "--config", str(self.config_file),
             "serve"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )
        log.close()

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM and wait: the clean way."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode


def with_sections(base: Path, sections_toml: str, target: Path) -> Config:
    """The testbed's controller TOML with its top-level sections replaced by those in
    ``sections_toml`` (e.g. a whole ``[inbound]``), written to ``target`` and validated."""
    data = tomllib.loads(base.read_text()) | tomllib.loads(sections_toml)
    target.write_text(tomli_w.dumps(data))
    return load_config(target)


def install_routing(asterisk: AsteriskInstance, config: Config) -> None:
    """Generate the config's queues and dialplan into the instance and load them."""
    asterisk.install_inbound(config.inbound)
