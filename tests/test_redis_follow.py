"""RedisFollower against a real redis-server: a job's stream entries reach the hub's
subscribers (on real socket pairs) once each and in order, through one reader per job,
which stops with the job's end, its last subscriber, or close, and outlives a Redis restart."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import pytest

from redis.asyncio import Redis

from app.storage.redis_store import RedisStore
from app.web.hub import Hub, HubStats
from app.web.metrics import Metrics
from app.web.redis_follow import Backoff, RedisFollower
from saga.events import COMPLETED, RUNNING
from tests.redis_support import RedisServer
from tests.sse_support import eventually, progress_event
from tests.store_support import job
from tests.test_hub import Sockets, arrived, sockets  # noqa: F401  (sockets: the fixture)

BLOCK_MS = 500  # short, so that an idle reader's re-issued read is exercised too


class Setup:
    """A store that writes the job's events as a worker does, and a follower feeding a hub."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.store = RedisStore.from_url(server.url)
        self.follower = RedisFollower.from_url(server.url, block_ms=BLOCK_MS, backoff=Backoff(first=0.05, cap=0.5))
        self.hub = Hub(watcher=self.follower)
        self.follower.hub = self.hub

    async def job(self, job_id: str) -> str:
        await self.store.create_job(job(job_id))
        return job_id

    async def append(self, job_id: str, seqs: range, last: str = RUNNING) -> None:
        for seq in seqs:
            await self.store.append_event(progress_event(job_id, seq, last if seq == seqs[-1] else RUNNING))

    def readers(self) -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t.get_name().startswith("redis-follow:") and not t.done()]


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Setup]:
    made = Setup(redis_server)
    yield made
    made.hub.close()
    await made.follower.close()
    await made.store.close()
    assert made.follower.stats.readers == 0


async def test_events_reach_every_subscriber_once_in_order_and_the_reader_ends_with_the_job(
    redis: Setup, sockets: Sockets  # noqa: F811
) -> None:
    job_id = await redis.job("j1")
    (first, a), (second, b) = [await sockets.live(redis.hub, job_id) for _ in range(2)]
    await redis.append(job_id, range(1, 8), last=COMPLETED)
    for client in (a, b):
        assert await arrived(client, lambda ids: ids[-1:] == [7], "the terminal event") == list(range(1, 8))
        assert b"event: done" in client.read()
    assert first.closed and second.closed
    await eventually(lambda: redis.follower.stats.readers == 0 and not redis.readers(), "the reader to end")
    assert redis.hub.stats.events_published == 7 and redis.follower.stats.errors == 0


async def test_subscribers_of_one_job_share_one_reader(redis: Setup, sockets: Sockets) -> None:  # noqa: F811
    job_id = await redis.job("j2")
    clients = [(await sockets.live(redis.hub, job_id))[1] for _ in range(5)]
    other = (await sockets.live(redis.hub, await redis.job("other")))[1]
    assert redis.follower.stats.readers == 2 and len(redis.readers()) == 2, "one reader per job"
    await redis.append(job_id, range(1, 4))
    for client in clients:
        assert await arrived(client, lambda ids: len(ids) == 3, "three events") == [1, 2, 3]
    assert other.ids() == [] and redis.hub.stats.events_published == 3, "each entry read once"


async def test_entries_up_to_after_seq_are_not_published_again(redis: Setup, sockets: Sockets) -> None:  # noqa: F811
    job_id = await redis.job("j3")
    await redis.append(job_id, range(1, 4))
    # The first subscriber, as a stream that replayed the log up to seq 2, starts the reader.
    replaying = redis.hub.subscribe(job_id, after_seq=2)
    _, client = await sockets.live(redis.hub, job_id)  # would take any seq: its last_seq is 0
    await redis.append(job_id, range(4, 6), last=COMPLETED)
    assert await arrived(client, lambda ids: ids[-1:] == [5], "the terminal event") == [3, 4, 5]
    assert redis.hub.stats.events_published == 3
    replaying.close()


async def test_the_last_subscriber_leaving_stops_the_reader(redis: Setup, sockets: Sockets) -> None:  # noqa: F811
    job_id = await redis.job("j4")
    (first, _), (second, _) = [await sockets.live(redis.hub, job_id) for _ in range(2)]
    await eventually(lambda: len(redis.readers()) == 1, "the reader to start")
    first.close()
    assert redis.follower.stats.readers == 1, "one subscriber is left"
    second.close()
    # Well within one block: the blocked read is cancelled, not waited out.
    await asyncio.wait_for(eventually(lambda: redis.follower.stats.readers == 0, "the reader to stop"), BLOCK_MS / 2000)
    assert not redis.readers()


async def test_a_redis_restart_mid_stream_loses_and_repeats_nothing(
    redis: Setup, redis_server: RedisServer, sockets: Sockets  # noqa: F811
) -> None:
    job_id = await redis.job("j5")
    sub, client = await sockets.live(redis.hub, job_id)
    await redis.append(job_id, range(1, 4))
    await arrived(client, lambda ids: ids[-1:] == [3], "the events before the outage")
    redis_server.stop(keep_data=True)
    await eventually(lambda: redis.follower.stats.errors >= 2, "the reader to fail and retry")
    redis_server.start()
    await redis.append(job_id, range(4, 10), last=COMPLETED)
    assert await arrived(client, lambda ids: ids[-1:] == [9], "the terminal event") == list(range(1, 10))
    assert redis.follower.stats.reconnects >= 1 and sub.closed
    await eventually(lambda: redis.follower.stats.readers == 0, "the reader to end with the job")
    scraped = Metrics(HubStats(), follow_stats=redis.follower.stats).exposition().decode()
    assert f"timetabler_redis_event_reconnects_total {float(redis.follower.stats.reconnects)}" in scraped
    assert "timetabler_redis_event_readers 0.0" in scraped


async def test_a_resp2_client_reads_the_same(redis_server: RedisServer, sockets: Sockets) -> None:  # noqa: F811
    """redis-py shapes XREAD's reply differently by protocol; the follower takes either."""
    store = RedisStore.from_url(redis_server.url)
    follower = RedisFollower(Redis.from_url(redis_server.url, decode_responses=True, socket_timeout=None, protocol=2))
    follower.hub = hub = Hub(watcher=follower)
    await store.create_job(job("j6"))
    _, client = await sockets.live(hub, "j6")
    for seq in range(1, 4):
        await store.append_event(progress_event("j6", seq, COMPLETED if seq == 3 else RUNNING))
    assert await arrived(client, lambda ids: ids[-1:] == [3], "the terminal event") == [1, 2, 3]
    hub.close()
    await follower.close()
    await store.close()


def test_backoff_doubles_to_its_cap_with_jitter() -> None:
    backoff = Backoff(first=0.1, cap=5.0, jitter=0.2)
    for failures, base in ((1, 0.1), (2, 0.2), (3, 0.4), (7, 5.0), (1000, 5.0)):
        delays = [backoff.delay(failures) for _ in range(200)]
        assert all(0.8 * base <= d <= 1.2 * base for d in delays) and len(set(delays)) > 1
