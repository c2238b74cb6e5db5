"""`timetabler serve`'s event loop: the listening socket with its connection caps, the
open-files limit those caps need, and accept errors logged once per interval.

This replaces `web.run_app`, which gives no place to admit or refuse a connection
before aiohttp takes it.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import time
from typing import Any, Callable

from aiohttp import web

from app.config import Config
from app.web.application import AccessLogger
from app.web.connections import CONNECTIONS, GuardedConnection

log = logging.getLogger(__name__)

ACCEPT_LOG_INTERVAL = 60.0  # seconds between two reports of failing accept() calls
FILES_HEADROOM = 256  # descriptors beside the connections: database, solver pipes, logs
BACKLOG = 1024  # a burst of connects waits in the kernel, not in SYN retries
# aiohttp's own default (3630 s) lets a client that never sends a request hold a
# socket for an hour; 75 s is what nginx allows an idle keep-alive connection.
KEEPALIVE_TIMEOUT = 75.0


def run(app: web.Application, config: Config) -> None:
    """Serve `app` until SIGINT or SIGTERM, then shut down cleanly."""
    asyncio.run(serve(app, config))


async def serve(app: web.Application, config: Config) -> None:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(AcceptErrorLog(ACCEPT_LOG_INTERVAL))
    raise_open_files_limit(config.max_connections)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log_class=AccessLogger, keepalive_timeout=KEEPALIVE_TIMEOUT)
    await runner.setup()
    guard, handlers = app[CONNECTIONS], runner.server
    assert handlers is not None  # set by setup()
    server = await loop.create_server(
        lambda: GuardedConnection(guard, handlers), config.host, config.port, backlog=BACKLOG
    )
    try:
        await stop.wait()
    finally:
        server.close()
        await runner.cleanup()


def raise_open_files_limit(connections: int) -> int:
    """Lift the soft open-files limit so `connections` (0: no cap) fit beside the service's
    own files, as far as the hard limit allows (no privilege needed); warn when it cannot.
    Past the limit accept() fails and clients wait in the kernel's queue. Returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if connections == 0 or soft == resource.RLIM_INFINITY:
        return soft
    wanted = connections + FILES_HEADROOM
    if soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft < wanted:
        log.warning(
            "the open-files limit is %d, below --max-connections %d plus %d for the service itself: "
            "raise it (ulimit -n, systemd LimitNOFILE=) or lower --max-connections", soft, connections, FILES_HEADROOM,
        )
    return soft


def _is_accept_error(context: dict[str, Any]) -> bool:
    # asyncio reports EMFILE and friends as "socket.accept() out of system resource"
    # (once per queued connection, each with a traceback) and re-raises other accept
    # errors out of the `_accept_connection` callback.
    return str(context.get("message", "")).startswith("socket.accept()") or "_accept_connection" in repr(
        context.get("handle")
    )


class AcceptErrorLog:
    """Loop exception handler: accept() failures become one line per `interval` with a
    count (a flood of 20,000 connects once wrote 1.5 GB of tracebacks in 6 minutes);
    everything else goes to the loop's default handler."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._next_report = float("-inf")
        self._unreported = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not _is_accept_error(context):
            loop.default_exception_handler(context)
            return
        self._unreported += 1
        now = self._clock()
        if now < self._next_report:
            return
        log.error(
            "cannot accept connections: %s (%d failed accept() calls since the last report; next report in %g s at the earliest)",
            context.get("exception"), self._unreported, self._interval,
        )
        self._unreported = 0
        self._next_report = now + self._interval
