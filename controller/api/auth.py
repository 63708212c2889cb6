"""Bearer-token check for requests that change state (and for reads that expose call data),
and the JSON errors and bodies of every endpoint."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from controller.api.keys import CONFIG

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object ({} without a body); a 400 if it is not one."""
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "request body is not valid JSON"}', content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text='{"error": "request body must be a JSON object"}',
            content_type="application/json",
        )
    return body


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
