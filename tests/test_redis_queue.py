"""RedisQueue and RedisCancelSignals against a real redis-server: claims in order, leases
that a janitor takes over as the next attempt (and a stale worker cannot take back), the
attempt limit, removal of what no worker has, places in line, cancels heard across a Redis
restart, and StoreUnavailable while Redis is down."""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Awaitable, Callable, TypeVar

import pytest

from app.storage import redis_keys as keys
from app.storage.queue import Claim, Reclaimed
from app.storage.redis_cancel import RedisCancelSignals
from app.storage.redis_queue import RedisQueue
from app.storage.store import StoreUnavailable
from tests.redis_support import RedisServer

T = TypeVar("T")
WAIT = 10.0  # seconds a condition may take before the test fails
LEASE = 0.2  # seconds: short, so that a stopped worker's claim is taken over soon


async def until(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], what: str) -> T:
    """`probe()` again until its answer is `ok`; fails after WAIT."""
    deadline = time.monotonic() + WAIT
    while True:
        answer = await probe()
        if ok(answer):
            return answer
        assert time.monotonic() < deadline, f"timed out waiting for {what} (last: {answer!r})"
        await asyncio.sleep(0.02)


@pytest.fixture
async def queue(redis_server: RedisServer) -> AsyncIterator[RedisQueue]:
    made = RedisQueue.from_url(redis_server.url)
    await made.connect()
    yield made
    await made.close()


async def claimed(queue: RedisQueue, consumer: str) -> Claim:
    claim = await queue.claim(consumer, block=1.0)
    assert claim is not None, f"{consumer} got nothing"
    return claim


async def test_claims_come_in_order_and_an_empty_queue_blocks_then_answers_none(queue: RedisQueue) -> None:
    for job_id in ("a", "b", "c"):
        await queue.enqueue(job_id)
    first, second, third = [await claimed(queue, consumer) for consumer in ("w1", "w2", "w1")]
    assert [c.job_id for c in (first, second, third)] == ["a", "b", "c"]
    assert {c.attempt for c in (first, second, third)} == {1}
    started = time.monotonic()
    assert await queue.claim("w2", block=0.3) is None
    assert time.monotonic() - started >= 0.25, "it returned before its block"


async def test_a_blocked_claim_gets_a_job_enqueued_while_it_waits(queue: RedisQueue) -> None:
    # Longer than redis-py 8's default socket timeout would allow were the client not built for it.
    waiting = asyncio.create_task(queue.claim("w1", block=6.0))
    await until(lambda: queue._redis.client_list(), lambda cs: any(c["cmd"] == "xreadgroup" for c in cs), "the read")
    await queue.enqueue("late")
    claim = await asyncio.wait_for(waiting, WAIT)
    assert claim is not None and claim.job_id == "late"


async def test_places_in_line_move_as_jobs_are_claimed_and_acked(queue: RedisQueue) -> None:
    assert await queue.positions() == {} and await queue.length() == 0
    for job_id in ("a", "b", "c"):
        await queue.enqueue(job_id)
    await queue.enqueue("a")  # already queued: keeps its place, not queued twice
    assert await queue.positions() == {"a": 1, "b": 2, "c": 3} and await queue.length() == 3
    claim = await claimed(queue, "w1")
    assert await queue.positions() == {"b": 1, "c": 2} and await queue.length() == 2
    await queue.ack(claim)
    assert await queue._redis.xlen(keys.QUEUE) == 2 and not await queue._redis.hexists(keys.QUEUE_ENTRIES, "a")
    assert await queue.reclaim("w2", 0, max_attempts=5) == Reclaimed((), ()), "an acked job is gone"
    assert (await claimed(queue, "w1")).job_id == "b"
    assert await queue.positions() == {"c": 1} and await queue.length() == 1


async def test_a_stopped_worker_is_taken_over_and_cannot_take_it_back(queue: RedisQueue) -> None:
    await queue.enqueue("stopped")
    await queue.enqueue("alive")
    stopped, alive = await claimed(queue, "w1"), await claimed(queue, "w2")

    async def janitor_pass() -> Reclaimed:
        assert await queue.renew(alive, "w2"), "w2 keeps its claim"
        return await queue.reclaim("w3", LEASE, max_attempts=3)

    taken = await until(janitor_pass, lambda r: bool(r.runs), "the stopped claim to be taken over")
    assert taken == Reclaimed((Claim("stopped", 2, stopped.entry),), ())
    assert not await queue.renew(stopped, "w1"), "a stale worker stole it back"
    assert await queue.renew(taken.runs[0], "w3") and await queue.renew(alive, "w2")
    await queue.ack(stopped)  # the stale run's ack must not drop the new run's entry
    assert await queue.renew(taken.runs[0], "w3")
    await queue.ack(taken.runs[0])
    assert not await queue.renew(taken.runs[0], "w3")
    assert await queue.reclaim("w3", 0, max_attempts=3) == Reclaimed((Claim("alive", 2, alive.entry),), ())


async def test_takeovers_past_the_limit_are_exhausted_and_leave_the_queue(queue: RedisQueue) -> None:
    await queue.enqueue("doomed")
    await queue.enqueue("waiting")  # never claimed: never reclaimed, uses up no attempt
    first = await claimed(queue, "w1")
    assert await queue.reclaim("w2", 0, max_attempts=2) == Reclaimed((Claim("doomed", 2, first.entry),), ())
    assert await queue.reclaim("w3", 0, max_attempts=2) == Reclaimed((), (Claim("doomed", 3, first.entry),))
    assert await queue.reclaim("w4", 0, max_attempts=2) == Reclaimed((), ())
    assert not await queue._redis.hexists(keys.QUEUE_ENTRIES, "doomed")
    assert [e for e, _ in await queue._redis.xrange(keys.QUEUE)] != [first.entry]
    assert await queue.positions() == {"waiting": 1}
    waiting = await claimed(queue, "w1")
    assert waiting.attempt == 1
    # Its delivery count was not raised while it waited: a takeover now is its second run.
    assert await queue.reclaim("w2", 0, max_attempts=2) == Reclaimed((Claim("waiting", 2, waiting.entry),), ())


async def test_a_claim_deleted_from_the_stream_is_reported_exhausted(queue: RedisQueue) -> None:
    await queue.enqueue("lost")
    claim = await claimed(queue, "w1")
    await queue._redis.xdel(keys.QUEUE, claim.entry)  # by hand, as an operator might
    assert await queue.reclaim("w2", 0, max_attempts=3) == Reclaimed((), (Claim("lost", 4, claim.entry),))
    assert not await queue._redis.hexists(keys.QUEUE_ENTRIES, "lost")


async def test_only_an_unclaimed_job_is_removed(queue: RedisQueue) -> None:
    for job_id in ("running", "waiting", "last"):
        await queue.enqueue(job_id)
    running = await claimed(queue, "w1")
    assert not await queue.remove("running") and await queue.renew(running, "w1")
    assert await queue.remove("waiting")
    assert not await queue.remove("waiting") and not await queue.remove("never-queued")
    assert await queue.positions() == {"last": 1} and await queue.length() == 1
    assert (await claimed(queue, "w2")).job_id == "last"
    assert await queue.claim("w2", block=0.05) is None


async def test_a_redis_that_lost_its_data_gets_its_group_back(queue: RedisQueue, redis_server: RedisServer) -> None:
    await queue.enqueue("before")
    redis_server.stop()
    redis_server.start()
    await queue.enqueue("after")
    assert (await claimed(queue, "w1")).job_id == "after"


async def test_redis_down_is_store_unavailable(queue: RedisQueue, redis_server: RedisServer) -> None:
    redis_server.stop()
    with pytest.raises(StoreUnavailable, match=f"Redis at 127.0.0.1:{redis_server.port} is unreachable"):
        await queue.enqueue("a")
    with pytest.raises(StoreUnavailable):
        await queue.claim("w1", block=0.1)
    signals = RedisCancelSignals.from_url(redis_server.url)
    with pytest.raises(StoreUnavailable):
        await signals.request("a")
    await signals.close()


# Cancels


async def subscribers(signals: RedisCancelSignals) -> int:
    return dict(await signals._redis.pubsub_numsub(keys.CANCEL_CHANNEL))[keys.CANCEL_CHANNEL]


async def test_cancels_are_heard_by_a_listener_and_again_after_a_redis_restart(redis_server: RedisServer) -> None:
    asker, worker = RedisCancelSignals.from_url(redis_server.url), RedisCancelSignals.from_url(redis_server.url)
    resubscribed = asyncio.Event()

    async def check_running_jobs() -> None:
        resubscribed.set()

    worker.on_resubscribed = check_running_jobs
    heard: asyncio.Queue[str] = asyncio.Queue()

    async def listen() -> None:
        async for job_id in worker.listen():
            await heard.put(job_id)

    listener = asyncio.create_task(listen())
    try:
        await until(lambda: subscribers(asker), lambda n: n == 1, "the subscription")
        assert not await worker.requested("j1")
        await asker.request("j1")
        assert await asyncio.wait_for(heard.get(), WAIT) == "j1"
        assert await worker.requested("j1") and not await worker.requested("j2")
        assert 0 < await asker._redis.ttl(keys.cancel_key("j1")) <= 24 * 3600

        redis_server.stop()
        redis_server.start()
        await asyncio.wait_for(resubscribed.wait(), WAIT)
        assert worker.resubscribes == 1
        await until(lambda: subscribers(asker), lambda n: n == 1, "the subscription again")
        await asker.request("j2")
        assert await asyncio.wait_for(heard.get(), WAIT) == "j2"
        assert await worker.requested("j2")
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await asker.close()
        await worker.close()
