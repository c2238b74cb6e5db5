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
from collections import Counter, deque
from dataclasses import dataclass
from types import TracebackType

from saga.events import ProgressEvent

DEFAULT_QUEUE_SIZE = 64
DEFAULT_WRITE_TIMEOUT = 30.0
DEFAULT_MAX_SUBSCRIBERS = 10_000


@dataclass
class HubStats:
    """Counters read by app/web/metrics at scrape time; the streams keep the last three."""

    events_published: int = 0
    events_coalesced: int = 0  # progress events a slow subscriber never saw
    subscribers_refused: int = 0  # turned away because max_subscribers were open
    subscribers_refused_user: int = 0  # turned away because their user had max_per_user open
    open_connections: int = 0
    events_sent: int = 0  # SSE events written (heartbeats not counted)
    subscribers_dropped: int = 0  # socket unwritable past write_timeout


class Subscription:
    """An async iterator of one job's events; ends when closed."""

    def __init__(self, hub: Hub, job_id: str, queue_size: int, user: str | None = None) -> None:
        self.job_id = job_id
        self.user = user
        self._hub = hub
        self._queue_size = queue_size
        self._backlog: deque[ProgressEvent] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self.coalesced = 0  # progress events this subscriber never saw

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
            self.coalesced += len(self._backlog) - len(kept)
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
    """Routes each published event to the subscriptions of its job.

    Also holds the fan-out limits its streams obey: `write_timeout`, seconds a
    subscriber's socket may stay unwritable before the stream drops it,
    `max_subscribers` open at once and `max_per_user` open by one user (more
    are refused, as during shutdown; None: no cap). The per-user cap keeps one
    user from holding every stream and locking everyone else out.
    """

    def __init__(
        self,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
        max_subscribers: int | None = DEFAULT_MAX_SUBSCRIBERS,
        max_per_user: int | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if write_timeout <= 0:
            raise ValueError(f"write_timeout must be > 0 seconds, got {write_timeout}")
        self.stats = HubStats()
        self.write_timeout = write_timeout
        self.max_subscribers = max_subscribers
        self.max_per_user = max_per_user
        self._by_user: Counter[str] = Counter()
        self._queue_size = queue_size
        self._by_job: dict[str, set[Subscription]] = {}
        self._count = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscriber_count(self) -> int:
        return self._count

    def publish(self, event: ProgressEvent) -> None:
        """Hand `event` to every subscriber of its job; never blocks."""
        self.stats.events_published += 1
        for subscription in tuple(self._by_job.get(event.job_id, ())):
            subscription.offer(event)

    def subscribe(self, job_id: str, user: str | None = None) -> Subscription:
        """A new subscription of `user` (None: not counted per user); already
        closed when shutting down or when the total or the user's cap is reached."""
        subscription = Subscription(self, job_id, self._queue_size, user)
        if self._closed:
            subscription.close()
        elif self.max_subscribers is not None and self.subscriber_count >= self.max_subscribers:
            self.stats.subscribers_refused += 1
            subscription.close()
        elif user is not None and self.max_per_user is not None and self._by_user[user] >= self.max_per_user:
            self.stats.subscribers_refused_user += 1
            subscription.close()
        else:
            self._by_job.setdefault(job_id, set()).add(subscription)
            self._count += 1
            if user is not None:
                self._by_user[user] += 1
        return subscription

    def user_count(self, user: str) -> int:
        """Open subscriptions of `user`."""
        return self._by_user[user]

    def discard(self, subscription: Subscription) -> None:
        """Forget `subscription` (called by `Subscription.close`)."""
        subs = self._by_job.get(subscription.job_id)
        if subs is None or subscription not in subs:
            return
        subs.remove(subscription)
        self._count -= 1
        if subscription.user is not None:
            self._by_user[subscription.user] -= 1
            if not self._by_user[subscription.user]:
                del self._by_user[subscription.user]  # no entry per user who ever watched
        if not subs:
            del self._by_job[subscription.job_id]

    def close(self) -> None:
        """End every subscription now and refuse new ones (server shutdown)."""
        self._closed = True
        for subs in tuple(self._by_job.values()):
            for subscription in tuple(subs):
                subscription.close()
