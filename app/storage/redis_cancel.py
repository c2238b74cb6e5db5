"""`CancelSignals` on Redis: a cancel asked on any instance, heard by the worker that runs
the job.

Two traces of one request, set at once (MULTI): a key (redis_keys.cancel_key, expiring
after a day) that says for good that it was asked, and a message on a pub/sub channel
(redis_keys.CANCEL_CHANNEL) that tells listeners now. Pub/sub alone is not enough: a
message published while a listener is disconnected is lost for it, and redis-py does not
subscribe again by itself once its connection dropped (here it is not let to: the listening
client has no retries, so that a loss is seen).

`listen()` subscribes again after a loss, backing off while Redis is away. Whatever was
asked meanwhile only its keys tell, so after each new subscription (not the first) it awaits
`on_resubscribed`, a callback the worker sets to call `requested()` for the jobs it runs;
`resubscribes` counts those for metrics and tests. Subscribed first, then checked: a
request is either in a key read after, or in a message heard after.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Awaitable, Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from app.storage import redis_keys as keys
from app.storage.redis_connection import Reach, blocking_client, command_client
from app.storage.store import StoreUnavailable

log = logging.getLogger(__name__)

CANCEL_TTL = 24 * 3600  # seconds a request is kept: longer than any job runs
# Seconds one wait for a message lasts: between them the listening connection is PINGed
# when idle for the client's health-check interval, so a silently dead one is noticed.
POLL = 1.0
BACKOFF_FIRST = 0.05  # seconds before subscribing again after a loss, doubling...
BACKOFF_CAP = 2.0  # ...up to this, while Redis stays away


class RedisCancelSignals:
    """`redis` runs request / requested (a command client); `listener` holds the
    subscriptions and must have socket_timeout=None and no retries (`from_url` builds both).
    Both decode responses. `close` closes them."""

    def __init__(self, redis: Redis, listener: Redis | None = None) -> None:
        self._redis = redis
        self._listener = listener or redis
        self._reach = Reach(redis, "cancels", log)
        self.on_resubscribed: Callable[[], Awaitable[None]] | None = None
        self.resubscribes = 0  # subscriptions made again after a loss

    @classmethod
    def from_url(cls, url: str) -> RedisCancelSignals:
        return cls(command_client(url), blocking_client(url))

    async def request(self, job_id: str) -> None:
        async with self._reach.reaching():
            async with self._redis.pipeline(transaction=True) as tx:
                tx.set(keys.cancel_key(job_id), "1", ex=CANCEL_TTL)
                tx.publish(keys.CANCEL_CHANNEL, job_id)
                await tx.execute()

    async def requested(self, job_id: str) -> bool:
        async with self._reach.reaching():
            return bool(await self._redis.exists(keys.cancel_key(job_id)))

    async def listen(self) -> AsyncIterator[str]:
        failures, subscribed_before = 0, False
        while True:
            pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(keys.CANCEL_CHANNEL)
                if subscribed_before or failures:
                    self.resubscribes += 1
                    log.info("cancels: subscribed again after %d failures", failures)
                    if self.on_resubscribed is not None:
                        await self.on_resubscribed()
                subscribed_before, failures = True, 0
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL)
                    if message is not None and message["type"] == "message":
                        yield message["data"]
            # Messages published from now on are lost: see above. StoreUnavailable: the
            # callback's requested() failed; it is called again after the next subscription.
            except (RedisError, OSError, StoreUnavailable) as err:
                failures += 1
                delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(failures - 1, 16))
                log.warning("cancels: subscription lost (%s); again in %.2f s", err, delay)
                await asyncio.sleep(delay)
            finally:
                await _quietly_close(pubsub)

    async def close(self) -> None:
        await self._redis.aclose()
        if self._listener is not self._redis:
            await self._listener.aclose()


async def _quietly_close(pubsub: PubSub) -> None:
    try:
        await pubsub.aclose()
    except (RedisError, OSError):  # its connection is the one that failed
        pass
