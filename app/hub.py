"""Per-process fan-out of job events to the streams watching them.

One producer per job calls `Hub.publish`; every stream of that job holds a
`Subscription` with a bounded backlog. Publishing never waits for a reader:
when a reader's backlog is full its queued `progress` events are coalesced
into the newest one (a later progress event supersedes an earlier one), while
terminal events are always kept, so a slow reader costs bounded memory and
still learns how the job ended.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from types import TracebackType

from saga.events import ProgressEvent

DEFAULT_QUEUE_SIZE = 64


@dataclass
class HubStats:
    """Counters read by the metrics endpoint; streams update the last three."""

    events_published: int = 0
    events_coalesced: int = 0
    open_connections: int = 0
    events_sent: int = 0
    subscribers_dropped: int = 0  # cut off because their socket stayed unwritable


class Subscription:
    """An async iterator of one job's events; ends when closed."""

    def __init__(self, hub: Hub, job_id: str, queue_size: int) -> None:
        self.job_id = job_id
        self._hub = hub
        self._queue_size = queue_size
        self._backlog: deque[ProgressEvent] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        return len(self._backlog)

    def offer(self, event: ProgressEvent) -> None:
        """Queue `event` without ever waiting; coalesce when the backlog is full."""
        if self._closed:
            return
        if len(self._backlog) >= self._queue_size:
            kept = [queued for queued in self._backlog if queued.terminal]
            self._hub.stats.events_coalesced += len(self._backlog) - len(kept)
            self._backlog = deque(kept)
        self._backlog.append(event)
        self._ready.set()

    def close(self) -> None:
        """Stop the iteration at once (pending events are dropped)."""
        if self._closed:
            return
        self._closed = True
        self._backlog.clear()
        self._ready.set()
        self._hub.discard(self)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ProgressEvent:
        while not self._backlog:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._backlog.popleft()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Hub:
    """Routes each published event to the subscriptions of its job."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.stats = HubStats()
        self._queue_size = queue_size
        self._by_job: dict[str, set[Subscription]] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._by_job.values())

    def publish(self, event: ProgressEvent) -> None:
        """Hand `event` to every subscriber of its job; never blocks."""
        self.stats.events_published += 1
        for subscription in tuple(self._by_job.get(event.job_id, ())):
            subscription.offer(event)

    def subscribe(self, job_id: str) -> Subscription:
        """A new subscription; already closed once the hub is shutting down."""
        subscription = Subscription(self, job_id, self._queue_size)
        if self._closed:
            subscription.close()
        else:
            self._by_job.setdefault(job_id, set()).add(subscription)
        return subscription

    def discard(self, subscription: Subscription) -> None:
        """Forget `subscription` (called by `Subscription.close`)."""
        subs = self._by_job.get(subscription.job_id)
        if subs is None:
            return
        subs.discard(subscription)
        if not subs:
            del self._by_job[subscription.job_id]

    def close(self) -> None:
        """End every subscription now and refuse new ones (server shutdown)."""
        self._closed = True
        for subs in tuple(self._by_job.values()):
            for subscription in tuple(subs):
                subscription.close()
