"""Hub fan-out over real sockets: one encoding per event, writes that never wait, slow
readers coalesced and cut off, pacing for large audiences, limits, clean closing.

Each subscriber writes to a real asyncio transport on one end of a socket pair; the test
reads the other end like a client would."""

from __future__ import annotations

import asyncio
import gc
import re
import socket
import tracemalloc
from dataclasses import replace
from typing import AsyncIterator, Callable

import pytest

from app.web.hub import Hub
from app.web.subscription import Subscription
from saga.events import COMPLETED, RUNNING
from tests.sse_support import WAIT, eventually, progress_event


class Client:
    """The reading end of a subscriber's socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""

    def read(self) -> bytes:
        """Everything that has arrived so far."""
        while True:
            try:
                got = self.sock.recv(1 << 20)
            except BlockingIOError:
                return self.data
            if not got:
                return self.data
            self.data += got

    def ids(self) -> list[int]:
        return [int(i) for i in re.findall(rb"^id: (\d+)$", self.read(), re.M)]


class Sockets:
    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.transports: list[asyncio.Transport] = []

    async def live(self, hub: Hub, job_id: str, user: str | None = None, rcvbuf: int | None = None) -> tuple[Subscription, Client]:
        """A subscription of `job_id`, live on a fresh socket pair (no replay)."""
        ours, theirs = socket.socketpair()
        if rcvbuf is not None:
            theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, rcvbuf)
        theirs.setblocking(False)
        transport, _ = await asyncio.get_running_loop().connect_accepted_socket(asyncio.Protocol, ours)
        self.transports.append(transport)
        client = Client(theirs)
        self.clients.append(client)
        subscription = hub.subscribe(job_id, user)
        subscription.go_live(transport, chunked=False)
        return subscription, client

    def close(self) -> None:
        for transport in self.transports:
            transport.abort()
        for client in self.clients:
            client.sock.close()


@pytest.fixture
async def sockets() -> AsyncIterator[Sockets]:
    made = Sockets()
    yield made
    made.close()


async def arrived(client: Client, condition: Callable[[list[int]], bool], what: str) -> list[int]:
    await eventually(lambda: condition(client.ids()), what)
    return client.ids()


async def test_events_reach_only_their_jobs_subscribers_in_order(sockets: Sockets) -> None:
    hub = Hub()
    (first, a1), (second, a2), (other, b) = [await sockets.live(hub, job) for job in ("a", "a", "b")]
    for seq in range(1, 6):
        hub.publish(progress_event("a", seq, COMPLETED if seq == 5 else RUNNING))
    hub.publish(progress_event("b", 1))
    assert await arrived(a1, lambda ids: len(ids) == 5, "a's five events") == [1, 2, 3, 4, 5]
    assert await arrived(a2, lambda ids: len(ids) == 5, "a's five events") == [1, 2, 3, 4, 5]
    assert await arrived(b, lambda ids: len(ids) == 1, "b's event") == [1]
    assert first.closed and second.closed and not other.closed, "a terminal event ends the stream"
    assert b"event: done" in a1.read() and b"event: done" not in b.read()
    hub.close()


async def test_event_bytes_are_built_once_however_many_subscribe(sockets: Sockets) -> None:
    hub = Hub(deliveries_per_second=1e9)  # no pacing: every event goes out
    clients = [(await sockets.live(hub, "j"))[1] for _ in range(100)]
    for seq in range(1, 31):
        hub.publish(progress_event("j", seq, COMPLETED if seq == 30 else RUNNING))
    for client in clients:
        await arrived(client, lambda ids: ids[-1:] == [30], "the terminal event")
    assert hub.stats.frames_encoded == 30, "one encoding per event, not per subscriber"
    assert len({client.read() for client in clients}) == 1, "every subscriber got the same bytes"
    assert hub.stats.events_sent == 100 * 31  # 30 events and one `done` each


async def test_a_reader_that_never_reads_delays_nobody_and_is_cut_off(sockets: Sockets) -> None:
    hub = Hub(soft_limit=16 * 1024, write_timeout=0.5, deliveries_per_second=1e9)
    fast_sub, fast = await sockets.live(hub, "j")
    stalled_sub, stalled = await sockets.live(hub, "j", rcvbuf=4096)  # never read
    big = "x" * 8192
    for seq in range(1, 200):
        hub.publish(replace(progress_event("j", seq), message=big))
        fast.read()  # a client that keeps up
    assert fast.ids() == list(range(1, 200)), "the fast reader got every event at once"
    assert stalled_sub.coalesced > 0 and hub.stats.events_coalesced == stalled_sub.coalesced
    await eventually(lambda: stalled_sub.closed, "the stalled reader to be cut off")
    assert hub.stats.subscribers_dropped == 1 and not fast_sub.closed and hub.subscriber_count == 1
    hub.close()


async def test_a_slow_reader_catches_up_with_the_newest_event_and_the_end(sockets: Sockets) -> None:
    hub = Hub(soft_limit=16 * 1024, write_timeout=30.0, deliveries_per_second=1e9)
    slow_sub, slow = await sockets.live(hub, "j", rcvbuf=4096)
    big = "y" * 8192
    for seq in range(1, 100):
        hub.publish(replace(progress_event("j", seq), message=big))
    hub.publish(progress_event("j", 100, COMPLETED))
    ids = await arrived(slow, lambda ids: ids[-1:] == [100], "the terminal event, once the reader reads")
    assert ids == sorted(ids) and len(ids) < 100 and slow_sub.coalesced == 100 - len(ids)
    await eventually(lambda: slow_sub.closed, "the stream to end after the client read the end")
    assert hub.stats.subscribers_dropped == 0


async def test_frames_that_come_during_the_replay_follow_it_without_gap_or_duplicate(sockets: Sockets) -> None:
    hub = Hub(queue_size=2)
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    transport, _ = await asyncio.get_running_loop().connect_accepted_socket(asyncio.Protocol, ours)
    client = Client(theirs)
    sub = hub.subscribe("j")
    for seq in range(1, 6):  # published while the stream replays; its replay ended at seq 2
        hub.publish(progress_event("j", seq))
    hub.publish(progress_event("j", 6, COMPLETED))
    hub.publish(progress_event("j", 7))  # a buggy producer keeps going; terminal must stay
    sub.last_seq = 2
    sub.go_live(transport, chunked=False)
    assert await arrived(client, lambda ids: 6 in ids, "the terminal event") == [5, 6]
    assert sub.coalesced == 4 and sub.closed
    transport.abort()
    theirs.close()


async def test_an_event_not_yet_stored_reaches_streams_that_subscribe_meanwhile_once(sockets: Sockets) -> None:
    hub = Hub()
    event = progress_event("j", 1)
    hub.publish(event, storing=True)  # nobody watches yet; the producer stores it next
    missed_it, had_it = hub.subscribe("j"), hub.subscribe("j")
    had_it.last_seq = 1  # its replay of the log found the event already stored
    hub.stored(event)
    late = hub.subscribe("j")  # from here on the log has it: the hub hands it over no more
    late.last_seq = 1
    clients = []
    for subscription in (missed_it, had_it, late):
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        transport, _ = await asyncio.get_running_loop().connect_accepted_socket(asyncio.Protocol, ours)
        sockets.transports.append(transport)
        clients.append(Client(theirs))
        sockets.clients.append(clients[-1])
        subscription.go_live(transport, chunked=False)
    hub.publish(progress_event("j", 2))
    for client in clients:
        await arrived(client, lambda ids: 2 in ids, "the next live event")
    assert [client.ids() for client in clients] == [[1, 2], [2], [2]], "no gap and no duplicate"
    assert hub.stats.frames_encoded == 2, "the stored-meanwhile event was encoded once too"
    hub.close()


async def test_a_held_event_goes_just_after_its_turn_when_no_fresher_one_comes(sockets: Sockets) -> None:
    hub = Hub(deliveries_per_second=1)  # one subscriber: a turn every second
    _, client = await sockets.live(hub, "j")
    hub.publish(progress_event("j", 1))
    hub.publish(progress_event("j", 2))  # within the turn: held
    loop = asyncio.get_running_loop()
    seen: asyncio.Future[list[int]] = loop.create_future()
    # Timers run in the order of their times, however busy the machine: this one, half a turn
    # after the held event's, sees what that wrote (a whole turn later it would not have gone).
    loop.call_later(1.5, lambda: seen.set_result(client.ids()))
    assert await seen == [1, 2]
    hub.close()


async def test_large_audiences_get_paced_progress_but_every_boundary_and_the_end(sockets: Sockets) -> None:
    hub = Hub(deliveries_per_second=4, hold=0.25)  # one subscriber: a turn every 0.25 s, held 0.25 s past it
    sub, client = await sockets.live(hub, "j")
    for seq in range(1, 11):  # a burst within one turn: the first goes at once, the newest is held
        hub.publish(progress_event("j", seq))
    assert client.ids() == [1]
    assert await arrived(client, lambda ids: ids[-1] == 10, "the held event, the producer being quiet") == [1, 10]
    assert hub.stats.events_paced == 8
    hub.publish(progress_event("j", 11))  # within the turn: held
    await asyncio.sleep(0.25)  # the turn passes; the held event would go only at the end of the hold
    hub.publish(progress_event("j", 12))  # after the turn: goes at once, superseding the held one
    assert client.ids() == [1, 10, 12] and hub.stats.events_paced == 9
    hub.publish(replace(progress_event("j", 13), stage="ga"))
    hub.publish(progress_event("j", 14, COMPLETED))
    assert client.ids() == [1, 10, 12, 13, 14], "a new stage and the end go out at once"
    assert sub.closed


async def test_heartbeats_and_a_client_that_left_are_noticed_by_one_sweeper(sockets: Sockets) -> None:
    hub = Hub(heartbeat=0.2)
    tasks = len(asyncio.all_tasks())
    staying = [await sockets.live(hub, "j") for _ in range(10)]
    leaving_sub, leaving = await sockets.live(hub, "j")
    assert len(asyncio.all_tasks()) == tasks + 1, "one sweeper task, none per stream"
    sockets.transports[-1].close()
    await eventually(lambda: leaving_sub.closed, "the sweeper to notice the client left")
    for _, client in staying:
        await eventually(lambda: b": ping" in client.read(), "a heartbeat")
    hub.close()
    await eventually(lambda: len(asyncio.all_tasks()) == tasks, "the sweeper to stop")


async def test_hub_close_ends_everything_and_refuses_new_subscribers() -> None:
    hub = Hub()
    subs = [hub.subscribe(f"j{i % 3}") for i in range(20)]
    hub.close()
    assert all(s.closed for s in subs) and hub.subscriber_count == 0
    late = hub.subscribe("j0")
    assert late.closed and hub.subscriber_count == 0
    hub.publish(progress_event("j0", 1))


async def test_limits_must_be_positive() -> None:
    for name in ("queue_size", "write_timeout", "heartbeat", "soft_limit", "deliveries_per_second"):
        with pytest.raises(ValueError, match=name):
            Hub(**{name: 0})  # type: ignore[arg-type]


async def _cycle(hub: Hub, sockets: Sockets, seq: int) -> None:
    sub, client = await sockets.live(hub, "j")
    hub.publish(progress_event("j", seq))
    assert client.ids() == [seq]
    sub.close()
    sockets.transports.pop().abort()
    sockets.clients.pop().sock.close()


async def test_ten_thousand_subscribe_close_cycles_leave_nothing_behind(sockets: Sockets) -> None:
    hub = Hub(deliveries_per_second=1e9)
    for seq in range(1000):  # warm-up: caches, interned strings, free lists
        await _cycle(hub, sockets, seq + 1)
    tasks_before = len(asyncio.all_tasks())
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.take_snapshot()
        for seq in range(1000, 10_000):
            await _cycle(hub, sockets, seq + 1)
        gc.collect()
        growth = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(start, "filename"))
    finally:
        tracemalloc.stop()
    assert hub.subscriber_count == 0
    assert len(asyncio.all_tasks()) == tasks_before
    assert growth < 64 * 1024, f"memory grew by {growth} bytes over 9,000 cycles"
    hub.close()


async def test_subscribers_beyond_the_limit_are_refused() -> None:
    hub = Hub(max_subscribers=2)
    first, second = hub.subscribe("a"), hub.subscribe("b")
    third = hub.subscribe("a")
    assert third.closed and not first.closed and not second.closed
    assert (hub.subscriber_count, hub.stats.subscribers_refused) == (2, 1)
    first.close()
    assert not hub.subscribe("c").closed
    hub.close()


async def test_a_user_over_their_cap_is_refused_and_other_users_are_not() -> None:
    hub = Hub(max_per_user=2)
    mine = [hub.subscribe("a", "alice"), hub.subscribe("b", "alice")]
    assert hub.subscribe("a", "alice").closed
    assert not hub.subscribe("a", "bob").closed and not hub.subscribe("a").closed  # None: not counted per user
    assert (hub.user_count("alice"), hub.stats.subscribers_refused_user, hub.stats.subscribers_refused) == (2, 1, 0)
    mine[0].close()
    assert hub.user_count("alice") == 1 and not hub.subscribe("c", "alice").closed
    hub.close()


class Watches:
    """A watcher that notes what the hub asks of it (the Redis reader implements the same seam)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def watch(self, job_id: str, after_seq: int) -> None:
        self.calls.append(("watch", job_id, str(after_seq)))

    def unwatch(self, job_id: str) -> None:
        self.calls.append(("unwatch", job_id))


async def test_a_watcher_is_asked_once_per_watched_job_and_released_with_its_last_subscriber() -> None:
    watches = Watches()
    hub = Hub(watcher=watches)
    first, second, other = hub.subscribe("a", after_seq=7), hub.subscribe("a", after_seq=9), hub.subscribe("b")
    assert watches.calls == [("watch", "a", "7"), ("watch", "b", "0")]
    first.close()
    assert watches.calls[-1] == ("watch", "b", "0"), "a still has a subscriber"
    second.close()
    other.close()
    assert watches.calls[2:] == [("unwatch", "a"), ("unwatch", "b")]
    hub.close()
