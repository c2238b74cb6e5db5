"""Caps on open connections, per client address and in total, enforced on the socket.

aiohttp takes every connection the kernel hands it and holds it for as long as
the client keeps it open, so a few hundred clients that never finish a request
used to exhaust the process's file descriptors. Here each accepted connection
is admitted or refused before any HTTP is parsed: a refused one gets a short
503 JSON answer and is closed, so it costs a file descriptor for at most
REFUSAL_LINGER seconds.

`GuardedConnection` wraps aiohttp's per-connection protocol (`RequestHandler`)
rather than subclassing it: only the public asyncio `Protocol` methods are
passed on, so nothing depends on aiohttp's internals.

`hand_over` takes a connection away from aiohttp while its socket stays open: a live event
stream may stay open for hours, and aiohttp's request, parser, writer and tasks for it
weigh about 7 KB; once the stream is live only the socket and its subscription are needed.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Protocol

from aiohttp import web

TOTAL, CLIENT = "total", "client"  # which cap refused a connection (the metrics label)
REFUSAL_LINGER = 1.0  # seconds a refused connection may take to read its 503 before it is cut


@dataclass
class ConnectionStats:
    """Counters read by app/web/metrics at scrape time."""

    open: int = 0
    refused_total: int = 0  # over --max-connections
    refused_client: int = 0  # over --max-connections-per-client
    body_timeouts: int = 0  # requests whose body did not arrive within --body-timeout


@dataclass(frozen=True)
class Caps:
    total: int | None  # None: no cap
    per_client: int | None  # None: no cap (behind a proxy every client has the proxy's address)


class ConnectionGuard:
    """Counts open connections by client address and decides who may open one more."""

    def __init__(self, caps: Caps) -> None:
        self.caps = caps
        self.stats = ConnectionStats()
        self._by_client: Counter[str] = Counter()

    def admit(self, client: str) -> str | None:
        """Count a new connection of `client`; or the cap (TOTAL, CLIENT) that refuses it."""
        if self.caps.total is not None and self.stats.open >= self.caps.total:
            self.stats.refused_total += 1
            return TOTAL
        if self.caps.per_client is not None and self._by_client[client] >= self.caps.per_client:
            self.stats.refused_client += 1
            return CLIENT
        self.stats.open += 1
        self._by_client[client] += 1
        return None

    def release(self, client: str) -> None:
        self.stats.open -= 1
        self._by_client[client] -= 1
        if not self._by_client[client]:
            del self._by_client[client]  # no entry kept per address ever seen

    def open_from(self, client: str) -> int:
        return self._by_client[client]

    def refusal(self, cap: str) -> bytes:
        """The whole HTTP/1.1 answer to a refused connection: JSON error shape, then close."""
        if cap == TOTAL:
            detail = f"The server has its limit of {self.caps.total} connections open; try again shortly."
        else:
            detail = f"Your address has its limit of {self.caps.per_client} connections open; close some or try again shortly."
        body = json.dumps({"error": "too_many_connections", "detail": detail}).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n"
        )
        return head.encode("ascii") + body


def _client(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


class GuardedConnection(asyncio.Protocol):
    """One accepted socket: refused at once, or handed to aiohttp's protocol for its whole life."""

    __slots__ = ("_guard", "_make_handler", "_inner", "_client", "_linger")  # one per open connection: no dict each

    def __init__(self, guard: ConnectionGuard, make_handler: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._make_handler = make_handler
        self._inner: asyncio.Protocol | None = None
        self._client = ""
        self._linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._client = _client(transport)
        cap = self._guard.admit(self._client)
        if cap is not None:
            self._refuse(transport, cap)
            return
        self._inner = self._make_handler()
        self._inner.connection_made(transport)

    def _refuse(self, transport: asyncio.Transport, cap: str) -> None:
        # Write the answer and half-close, then read (and drop) until the client
        # closes: closing with its request still unread would send a reset that
        # can destroy the 503 before the client reads it.
        transport.write(self._guard.refusal(cap))
        transport.write_eof()
        self._linger = asyncio.get_running_loop().call_later(REFUSAL_LINGER, transport.abort)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return self._inner.eof_received()
        return None  # a refused client is done: let the transport close

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
        if self._inner is None:
            return
        self._release()
        self._inner.connection_lost(exc)

    @property
    def inner(self) -> asyncio.Protocol | None:
        """aiohttp's protocol for this connection; None when refused or handed over."""
        return self._inner

    def let_go(self) -> Callable[[], None]:
        """Stop passing events on (see `hand_over`); what releases this connection's place
        under the caps when its socket closes."""
        self._inner = None
        return self._release

    def _release(self) -> None:
        self._guard.release(self._client)


class Owner(Protocol):
    """What a handed-over connection belongs to: told when its socket closes."""

    def close(self) -> None: ...


class OwnedConnection(asyncio.Protocol):
    """The protocol of a socket aiohttp has let go of: its owner writes to the transport;
    the client closing its side, or the socket failing, closes the owner."""

    __slots__ = ("_owner", "_release")

    def __init__(self, owner: Owner, release: Callable[[], None] | None) -> None:
        self._owner, self._release = owner, release

    def data_received(self, data: bytes) -> None:
        pass  # an event stream's client has nothing more to say; a new request needs a new connection

    def eof_received(self) -> bool | None:
        return None  # the client is gone: let the transport close, which calls connection_lost

    def connection_lost(self, exc: Exception | None) -> None:
        if self._release is not None:
            self._release()
        self._owner.close()


def hand_over(transport: asyncio.Transport, owner: Owner) -> bool:
    """Take the connection of `transport` from aiohttp for `owner`, the socket left open:
    aiohttp drops its objects for it as for a client that left, and the handler's response
    is never ended by aiohttp (the owner ends it). False, with nothing changed, when the
    connection is not aiohttp's (or is closing)."""
    protocol = transport.get_protocol()
    guarded = protocol if isinstance(protocol, GuardedConnection) else None
    aiohttp_side = guarded.inner if guarded is not None else protocol
    if not isinstance(aiohttp_side, web.RequestHandler) or transport.is_closing():
        return False
    release = guarded.let_go() if guarded is not None else None
    transport.set_protocol(OwnedConnection(owner, release))
    # aiohttp's protocol closes the transport it holds when it loses its connection:
    # forgetting it first leaves the socket open (BaseProtocol.transport, a public attribute).
    aiohttp_side.transport = None
    aiohttp_side.connection_lost(None)
    if not transport.is_reading():  # aiohttp may have paused reading; a client's leaving must be seen
        transport.resume_reading()
    return True


def guard_of(config_total: int, config_per_client: int) -> ConnectionGuard:
    """A guard for the flags' values, where 0 means no cap."""
    return ConnectionGuard(Caps(total=config_total or None, per_client=config_per_client or None))


CONNECTIONS: web.AppKey[ConnectionGuard] = web.AppKey("connections", ConnectionGuard)
