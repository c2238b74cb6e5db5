"""Credentialed CORS for an allowlist of origins; off when the list is empty.

Headers are added in `on_response_prepare`, so they reach every response,
including error bodies and SSE streams whose headers go out before the handler ends.
"""

from __future__ import annotations

from typing import Awaitable

from aiohttp import web

from app.web.keys import CONFIG

ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Last-Event-ID"
MAX_AGE = "600"


def _allowed(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    return origin if origin and origin in request.app[CONFIG].cors_origin else None


@web.middleware
def preflight_middleware(request: web.Request, handler: web.Handler) -> Awaitable[web.StreamResponse]:
    """Answer preflight requests from allowed origins before routing (routes have no OPTIONS).

    A plain function returning the handler's awaitable (aiohttp awaits what a middleware
    returns): nothing of it stays on the stack while an event stream is open for hours."""
    if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method") and _allowed(request):
        return _preflight()
    return handler(request)


async def _preflight() -> web.StreamResponse:
    return web.Response(status=204, headers={
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": MAX_AGE,
    })


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    origin = _allowed(request)
    if origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Vary"] = "Origin"
