"""Bearer-token check for requests that change state (and for reads that expose call data)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from controller.api.keys import CONFIG

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def token_ok(request: web.Request) -> bool:
    expected = request.app[CONFIG].http.api_token.get_secret_value()
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), expected)


def require_token(handler: Handler) -> Handler:
    """Wrap a handler so it answers 401 unless the request carries the configured bearer token."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not token_ok(request):
            return json_error(401, "missing or wrong bearer token")
        return await handler(request)

    guarded.__name__ = handler.__name__
    guarded.__doc__ = handler.__doc__
    return guarded
