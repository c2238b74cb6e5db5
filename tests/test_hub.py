"""Hub fan-out: routing, bounded backlogs with coalescing, clean closing."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import pytest

from app.web.hub import Hub, Subscription
from saga.events import COMPLETED, RUNNING, ProgressEvent
from tests.sse_support import progress_event


async def drain(subscription: Subscription) -> list[ProgressEvent]:
    """Everything up to and including the terminal event."""
    got = []
    async for event in subscription:
        got.append(event)
        if event.terminal:
            break
    return got


async def test_events_reach_only_their_jobs_subscribers_in_order() -> None:
    hub = Hub()
    with hub.subscribe("a") as first, hub.subscribe("a") as second, hub.subscribe("b") as other:
        for seq in range(1, 6):
            hub.publish(progress_event("a", seq, COMPLETED if seq == 5 else RUNNING))
        hub.publish(progress_event("c", 1))  # nobody listens: dropped quietly
        for sub in (first, second):
            assert [e.seq for e in await asyncio.wait_for(drain(sub), 5)] == [1, 2, 3, 4, 5]
        assert other.pending == 0
    assert hub.subscriber_count == 0
    assert hub.stats.events_published == 6
    assert hub.stats.events_coalesced == 0


async def test_slow_subscriber_is_coalesced_while_fast_one_gets_everything() -> None:
    hub = Hub(queue_size=4)
    fast, slow = hub.subscribe("j"), hub.subscribe("j")
    fast_reader = asyncio.create_task(drain(fast))
    for seq in range(1, 201):
        hub.publish(progress_event("j", seq))
        await asyncio.sleep(0)  # lets the fast reader keep up; the slow one never reads
        assert slow.pending <= 4
    backlog = [await anext(slow) for _ in range(slow.pending)]
    assert backlog[-1].seq == 200, "the newest progress survives coalescing"
    hub.publish(progress_event("j", 201, COMPLETED))

    assert [e.seq for e in await asyncio.wait_for(fast_reader, 5)] == list(range(1, 202))
    seqs = [e.seq for e in backlog + await asyncio.wait_for(drain(slow), 5)]
    assert seqs == sorted(seqs) and seqs[-1] == 201
    assert hub.stats.events_coalesced == 201 - len(seqs)
    fast.close()
    slow.close()


async def test_terminal_event_survives_a_full_backlog() -> None:
    hub = Hub(queue_size=2)
    with hub.subscribe("j") as sub:
        hub.publish(progress_event("j", 1))
        hub.publish(progress_event("j", 2, COMPLETED))
        for seq in range(3, 10):  # a buggy producer keeps going; terminal must stay
            hub.publish(progress_event("j", seq))
        got = [await anext(sub) for _ in range(sub.pending)]
    assert [e.seq for e in got] == [2, 9]
    assert got[0].terminal


async def test_close_wakes_a_waiting_reader() -> None:
    hub = Hub()
    sub = hub.subscribe("j")
    reader = asyncio.create_task(drain(sub))
    await asyncio.sleep(0)
    sub.close()
    assert await asyncio.wait_for(reader, 5) == []
    assert hub.subscriber_count == 0


async def test_hub_close_ends_everything_and_refuses_new_subscribers() -> None:
    hub = Hub()
    readers = [asyncio.create_task(drain(hub.subscribe(f"j{i % 3}"))) for i in range(20)]
    await asyncio.sleep(0)
    hub.close()
    assert await asyncio.wait_for(asyncio.gather(*readers), 5) == [[]] * 20
    late = hub.subscribe("j0")
    assert late.closed and hub.subscriber_count == 0
    hub.publish(progress_event("j0", 1))
    assert late.pending == 0


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="queue_size"):
        Hub(queue_size=0)
    with pytest.raises(ValueError, match="write_timeout"):
        Hub(write_timeout=0)


async def _cycle(hub: Hub, seq: int) -> None:
    sub = hub.subscribe("j")
    reader = asyncio.create_task(anext(sub))
    hub.publish(progress_event("j", seq))
    assert (await reader).seq == seq
    sub.close()


async def test_ten_thousand_connect_disconnect_cycles_leave_nothing_behind() -> None:
    hub = Hub()
    tasks_before = len(asyncio.all_tasks())
    for seq in range(1000):  # warm-up: caches, interned strings, free lists
        await _cycle(hub, seq)
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.take_snapshot()
        for seq in range(1000, 10_000):
            await _cycle(hub, seq)
        gc.collect()
        growth = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(start, "filename"))
    finally:
        tracemalloc.stop()
    assert hub.subscriber_count == 0
    assert len(asyncio.all_tasks()) == tasks_before
    assert growth < 64 * 1024, f"memory grew by {growth} bytes over 9,000 cycles"


def test_subscribers_beyond_the_limit_are_refused() -> None:
    hub = Hub(max_subscribers=2)
    first, second = hub.subscribe("a"), hub.subscribe("b")
    third = hub.subscribe("a")
    assert third.closed and not first.closed and not second.closed
    assert (hub.subscriber_count, hub.stats.subscribers_refused) == (2, 1)
    first.close()
    assert not hub.subscribe("c").closed


def test_a_user_over_their_cap_is_refused_and_other_users_are_not() -> None:
    hub = Hub(max_per_user=2)
    mine = [hub.subscribe("a", "alice"), hub.subscribe("b", "alice")]
    assert hub.subscribe("a", "alice").closed
    assert not hub.subscribe("a", "bob").closed and not hub.subscribe("a").closed  # None: not counted per user
    assert (hub.user_count("alice"), hub.stats.subscribers_refused_user, hub.stats.subscribers_refused) == (2, 1, 0)
    mine[0].close()
    assert hub.user_count("alice") == 1 and not hub.subscribe("c", "alice").closed
