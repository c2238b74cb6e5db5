"""The hub's `Watcher` on Redis: a job's events, written by whichever worker runs it, read
from the job's stream (app/storage/redis_store.py) and published to this process's hub.

One reader task per watched job per process, shared by all the job's subscribers here: a
thousand streams of one job cost one blocking XREAD, not a thousand, and no subscriber holds
a Redis connection of its own (each watched job's reader holds one of the client's pool
while it blocks). A stream, not pub/sub: pub/sub drops whatever is published
while the reader is disconnected, while a stream is read again from the last id seen, so a
Redis outage or restart (with its data) delays events but neither skips nor repeats one.
Only what `MAXLEN ~` trimmed meanwhile is gone; a client that reconnects gets a snapshot.

The reader blocks for `block_ms` at a time, so an idle job costs one cheap XREAD every few
seconds; cancelling it (unwatch, close) interrupts the wait at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.storage import redis_keys as keys
from app.web.hub import Hub
from saga.events import ProgressEvent

BLOCK_MS = 5000  # one XREAD waits this long for new entries before it is issued again
COUNT = 100  # entries per read at most: a reader far behind catches up in bounded bites
CONNECT_TIMEOUT = 2.0
# Jobs one process may read at once: a blocked XREAD holds a pooled connection, and redis-py's
# pool stops at 100 by default (more readers would fail, MaxConnectionsError, and back off).
MAX_CONNECTIONS = 5000
# A read that outlasts its block by this much is on a dead connection (no socket timeout
# can tell, since the read blocks on purpose): it is dropped and read again.
STALL_GRACE = 5.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Seconds between reads while Redis fails: `first`, doubling up to `cap`, ±`jitter`,
    so the readers of many jobs and processes do not come back in step."""

    first: float = 0.1
    cap: float = 5.0
    jitter: float = 0.2

    def delay(self, failures: int) -> float:
        base = min(self.cap, self.first * 2 ** min(failures - 1, 32))
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


@dataclass
class FollowStats:
    """Read by /metrics at scrape time."""

    readers: int = 0  # reader tasks started and not yet ended
    reconnects: int = 0  # reads that succeeded again after a failure
    errors: int = 0  # failed reads, and entries that could not be parsed


class RedisFollower:
    """Publishes to `hub` the events of the jobs it is asked to watch.

    `redis` must decode responses and must not time out blocking reads
    (`socket_timeout=None`); `from_url` builds such a client. The follower owns it: `close`
    closes it. `hub` may be set after construction, as the hub takes its watcher in its own
    constructor.
    """

    def __init__(self, redis: Redis, hub: Hub | None = None, *, block_ms: int = BLOCK_MS,
                 backoff: Backoff = Backoff()) -> None:
        self.hub = hub
        self.stats = FollowStats()
        self._redis = redis
        self._block_ms = block_ms
        self._backoff = backoff
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    @classmethod
    def from_url(cls, url: str, hub: Hub | None = None, *, block_ms: int = BLOCK_MS, backoff: Backoff = Backoff(),
                 max_connections: int = MAX_CONNECTIONS) -> RedisFollower:
        redis = Redis.from_url(
            url,
            max_connections=max_connections,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=None,  # XREAD BLOCK waits on purpose; a dead connection: STALL_GRACE
            retry=Retry(NoBackoff(), 0),  # the reader retries, with its own backoff, and counts
        )
        return cls(redis, hub, block_ms=block_ms, backoff=backoff)

    def watch(self, job_id: str, after_seq: int) -> None:
        if self._closed or job_id in self._readers:
            return
        reader = asyncio.get_running_loop().create_task(self._follow(job_id, after_seq), name=f"redis-follow:{job_id}")
        self._readers[job_id] = reader
        self.stats.readers += 1
        # A callback, not the task's own `finally`, which never runs if it is cancelled before its first step.
        reader.add_done_callback(lambda _: self._ended(job_id, reader))

    def _ended(self, job_id: str, reader: asyncio.Task[None]) -> None:
        self.stats.readers -= 1
        if self._readers.get(job_id) is reader:  # not a newer reader of the job, watched again
            del self._readers[job_id]
        if not reader.cancelled() and reader.exception() is not None:
            log.error("events of job %s: reader failed", job_id, exc_info=reader.exception())

    def unwatch(self, job_id: str) -> None:
        reader = self._readers.pop(job_id, None)
        if reader is not None:
            reader.cancel()

    async def close(self) -> None:
        """Stop every reader, then close the client."""
        self._closed = True
        readers = list(self._readers.values())
        self._readers.clear()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await self._redis.aclose()

    async def _follow(self, job_id: str, after_seq: int) -> None:
        stream, last = keys.events_key(job_id), f"{after_seq}-0"
        failures = 0
        while True:
            try:
                reply = await asyncio.wait_for(
                    self._redis.xread({stream: last}, count=COUNT, block=self._block_ms),
                    self._block_ms / 1000 + STALL_GRACE,
                )
            except (RedisError, OSError, TimeoutError) as err:  # resumed from `last`: nothing skipped
                failures += 1
                self.stats.errors += 1
                delay = self._backoff.delay(failures)
                log.warning("events of job %s: read failed (%s); again in %.1f s", job_id, err, delay)
                await asyncio.sleep(delay)
                continue
            if failures:
                self.stats.reconnects += 1
                log.info("events of job %s: Redis answers again after %d failed reads", job_id, failures)
                failures = 0
            for entry_id, entry in _entries(reply):
                last = entry_id  # first: an entry that fails to parse is not read again
                try:
                    event = ProgressEvent.from_json(entry["data"])
                except (KeyError, TypeError, ValueError):
                    self.stats.errors += 1
                    log.exception("events of job %s: entry %s unreadable; skipped", job_id, entry_id)
                    continue
                assert self.hub is not None, "RedisFollower.hub is not set"
                self.hub.publish(event)
                if event.terminal:
                    return


def _entries(reply: Any) -> Iterator[tuple[str, dict[str, str]]]:
    """(id, fields) of a one-stream XREAD reply: RESP2 gives [[key, entries]], redis-py's
    RESP3 {key: [entries]}."""
    if isinstance(reply, dict):
        for chunks in reply.values():
            for entries in chunks:
                yield from entries
    else:
        for _, entries in reply or ():
            yield from entries
