"""Typed keys for the objects the aiohttp application shares with its handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from controller.config import Config
    from controller.store.base import Database

CONFIG: web.AppKey[Config] = web.AppKey("config")
STORE: web.AppKey[Database] = web.AppKey("store")

if TYPE_CHECKING:
    from controller.app import Controller

CONTROLLER: web.AppKey[Controller] = web.AppKey("controller")
