"""Request bodies that are too big or too slow are refused before they tie anything up.

aiohttp calls a handler as soon as the headers are in and lets it wait for the
body for as long as the client likes: a client that announced `Content-Length:
100` and sent nothing was still held after 409 s. This middleware
- answers an announced `Content-Length` over --max-body with 413 before reading
  a byte (a chunked body over the limit is still caught by `client_max_size`);
- gives every body --body-timeout seconds from the end of the headers to its
  last byte; when that passes, a handler waiting on the body wakes with
  `BodyRefused`, the client gets 408 and the connection is closed.

Both end by setting `BodyRefused` on the request's body stream. It is a
`TimeoutError` on purpose: aiohttp, after a response, drains an unread body for
up to 10 s ("lingering") and treats a TimeoutError from that read as the end of
it, so the connection closes at once instead of after ten more seconds.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable

from aiohttp import web

from app.web.connections import CONNECTIONS, ConnectionStats
from app.web.errors import json_error
from app.web.keys import CONFIG


class BodyRefused(TimeoutError):
    """Set on a body the server will not read further (too large, or too slow)."""


def size_words(n: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


def too_large(max_body: int) -> web.Response:
    return json_error(413, "payload_too_large", f"The request body is larger than the {size_words(max_body)} limit.")


def _refused(request: web.Request, response: web.Response) -> web.Response:
    request.content.set_exception(BodyRefused(response.reason))
    response.force_close()
    return response


class BodyDeadline:
    """Fires `seconds` after the headers unless the body has fully arrived by then."""

    def __init__(self, request: web.Request, seconds: float, stats: ConnectionStats | None) -> None:
        self.expired = False
        self._content = request.content
        self._seconds = seconds
        self._stats = stats
        self._handle = asyncio.get_running_loop().call_later(seconds, self._expire)
        self._content.on_eof(self._handle.cancel)

    def _expire(self) -> None:
        if self._content.is_eof() or self._content.exception() is not None:
            return  # complete, or the client already left
        self.expired = True
        if self._stats is not None:
            self._stats.body_timeouts += 1
        # Wakes a handler blocked on the body; once the handler has answered,
        # it ends aiohttp's drain of the unread rest and the socket closes.
        self._content.set_exception(BodyRefused(f"no complete body within {self._seconds:g} s"))

    def response(self, request: web.Request) -> web.Response:
        timed_out = json_error(408, "request_timeout", f"The request body did not arrive within {self._seconds:g} s.")
        return _refused(request, timed_out)


@web.middleware
def body_limits_middleware(request: web.Request, handler: web.Handler) -> Awaitable[web.StreamResponse]:
    """A request without a body goes straight to its handler: this plain function returns the
    handler's awaitable (aiohttp awaits it), so no frame of it stays while an event stream is open."""
    if request.content_length is None and not request.body_exists:
        return handler(request)
    return _limit_body(request, handler)


async def _limit_body(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    config = request.app[CONFIG]
    length = request.content_length
    if length is not None and length > config.max_body:
        return _refused(request, too_large(config.max_body))
    deadline = None
    if request.body_exists and not request.content.is_eof():
        guard = request.app.get(CONNECTIONS)
        deadline = BodyDeadline(request, config.body_timeout, guard.stats if guard is not None else None)
    try:
        response = await handler(request)
    except web.HTTPRequestEntityTooLarge:  # a chunked body past the limit: close rather than drain the rest
        return _refused(request, too_large(config.max_body))
    except Exception:
        # Whatever the handler made of the interrupted read (a 400, a 500), the truth is 408.
        if deadline is not None and deadline.expired:
            return deadline.response(request)
        raise
    return deadline.response(request) if deadline is not None and deadline.expired else response
