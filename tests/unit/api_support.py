"""An aiohttp test client for a feature's API routes over a real store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controller.api.keys import CONFIG, STORE
from controller.config import Config
from controller.store.base import Database


@asynccontextmanager
async def serving(
    config: Config, store: Database, *installs: Callable[[web.Application], None]
) -> AsyncIterator[TestClient]:
    """A client of an app with ``config`` and ``store`` shared, after each of ``installs``
    (a module's ``add_routes``, or what else a handler reads) ran on it."""
    app = web.Application()
    app[CONFIG] = config
    app[STORE] = store
    for install in installs:
        install(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client
