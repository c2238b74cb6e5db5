"""What the Redis-backed pieces share: how their clients are built, and how a Redis that
cannot be reached reads to their callers.

Two kinds of client. `command_client` for commands that answer at once: a dead connection
is noticed after COMMAND_TIMEOUT, and a dropped one is retried. `blocking_client` for reads
that wait on purpose (XREADGROUP BLOCK, pub/sub): redis-py 8 gives every socket read a
5 s timeout by default, which would break a read blocked for longer, so it has none (the
caller bounds the wait itself), and no retries (the caller retries with its own backoff).

A Redis unreachable, or refusing writes for now, is StoreUnavailable (UNWRITABLE), so that
every caller handles one exception type (the web edge answers 503).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError, MasterDownError, OutOfMemoryError, ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from app.storage.store import UNWRITABLE, StoreUnavailable

CONNECT_TIMEOUT = 2.0  # seconds: an unreachable Redis is a 503 soon, not a hung request
# Seconds a command may take. A command client must not block (BLPOP / XREAD BLOCK), which
# needs socket_timeout=None; a dead connection is noticed after this long instead of never.
COMMAND_TIMEOUT = 5.0
HEALTH_CHECK = 30  # seconds idle after which a pooled connection is PINGed before use
RETRIES = 3  # redis-py retries a command on a dropped connection, backing off up to 0.5 s
# Error replies that mean "not now" rather than "wrong": the write is kept and retried.
REFUSALS = (OutOfMemoryError, ReadOnlyError, MasterDownError)
REFUSAL_CODES = ("MISCONF", "BUSY ", "NOREPLICAS")


def command_client(url: str) -> Redis:
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=COMMAND_TIMEOUT,
        health_check_interval=HEALTH_CHECK,
        retry=Retry(ExponentialBackoff(), RETRIES),
    )


def blocking_client(url: str) -> Redis:
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=None,  # a blocked read waits on purpose; its caller bounds it
        health_check_interval=HEALTH_CHECK,
        retry=Retry(NoBackoff(), 0),
    )


def where(redis: Redis) -> str:
    """host:port (or the socket's path) of a client, for messages."""
    kwargs = redis.connection_pool.connection_kwargs
    return kwargs.get("path") or f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def is_refusal(err: ResponseError) -> bool:
    return isinstance(err, REFUSALS) or str(err).startswith(REFUSAL_CODES)


class Reach:
    """Turns Redis errors that mean "not now" into StoreUnavailable, and logs one line when a
    spell of them starts and one when it ends (not one per call)."""

    def __init__(self, redis: Redis, what: str, log: logging.Logger) -> None:
        self.where = where(redis)
        self.failing: str | None = None  # why the last call failed; None once one succeeds
        self._what = what
        self._log = log

    @asynccontextmanager
    async def reaching(self) -> AsyncIterator[None]:
        try:
            yield
        except (ConnectionError, RedisTimeout, OSError) as err:  # BusyLoadingError too: Redis is starting
            raise self.unavailable(f"Redis at {self.where} is unreachable ({err})") from err
        except ResponseError as err:
            if not is_refusal(err):
                raise
            raise self.unavailable(f"Redis at {self.where} refuses writes ({err})") from err
        if self.failing is not None:
            self._log.warning("%s: Redis answers again", self._what)
            self.failing = None

    def unavailable(self, reason: str) -> StoreUnavailable:
        if self.failing is None:
            self._log.error("%s: %s", self._what, reason)
        self.failing = reason
        return StoreUnavailable(UNWRITABLE, reason)
