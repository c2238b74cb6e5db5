"""Per-process fan-out of job events to the streams watching them.

One producer per job calls `Hub.publish`. The hub encodes each event once (app/web/frames.py)
and hands the same bytes to every `Subscription` of the job, which writes them to its socket
without waiting (app/web/subscription.py). Nothing runs per stream while it is idle: one
sweeper task looks at every stream each `SWEEP` seconds, to notice clients that left, catch
up slow ones and write heartbeats.

The event rate adapts to the audience: the process writes at most about
`deliveries_per_second` frames per second in all, so when thousands watch, a job's progress
events are paced further apart: one that comes before its job's turn is held, and the first
event after the turn goes out at once (so what is sent is fresh); a held event goes out on
its own only if the producer stays quiet. A change of stage or status and the terminal
event always go out at once.

The producer publishes an event before it stores it (`publish(event, storing=True)`, then
`stored(event)`), so the store write does not delay the live streams. Until it is stored, a
stream that subscribes cannot find the event in the log it replays, so the hub hands it the
event itself; the stream drops whatever its replay already had, by seq.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from app.web.frames import Frame, frame
from app.web.subscription import Subscription
from saga.events import ProgressEvent

DEFAULT_QUEUE_SIZE = 64
DEFAULT_WRITE_TIMEOUT = 30.0
DEFAULT_MAX_SUBSCRIBERS = 10_000
DEFAULT_SOFT_LIMIT = 64 * 1024  # unread bytes in a stream's buffer before its progress frames are coalesced
DEFAULT_DELIVERIES_PER_SECOND = 50_000  # frames the process writes per second, over all streams
# Seconds past its turn that a held progress event waits for a fresher one before it goes
# itself: long enough for a producer's next report, short enough that no event waits much
# longer than one turn.
DEFAULT_HOLD = 0.02
DEFAULT_HEARTBEAT = 15.0
SWEEP = 1.0  # seconds between two looks at every stream
UNPACED = 0.01  # seconds: a small audience, whose spacing would be shorter, gets every event at once
log = logging.getLogger(__name__)


class Watcher(Protocol):
    """Feeds the hub a job's events from elsewhere while this process has subscribers of
    it (with Redis: one reader of the job's event stream per process, however many watch)."""

    def watch(self, job_id: str, after_seq: int) -> None:
        """Start publishing the job's events with seq > `after_seq` to the hub."""
        ...

    def unwatch(self, job_id: str) -> None: ...


@dataclass
class HubStats:
    """Counters read by app/web/metrics at scrape time; the streams keep some of them."""

    events_published: int = 0
    frames_encoded: int = 0  # one per event sent to at least one stream, however many
    events_paced: int = 0  # progress events superseded before their turn (large audiences)
    events_coalesced: int = 0  # progress events a slow subscriber never saw
    subscribers_refused: int = 0  # turned away because max_subscribers were open
    subscribers_refused_user: int = 0  # turned away because their user had max_per_user open
    open_connections: int = 0
    events_sent: int = 0  # SSE events written (heartbeats not counted)
    subscribers_dropped: int = 0  # stayed behind for write_timeout


@dataclass
class _Pace:
    """When a job's next progress frame may go out, and the newest one waiting for it."""

    subscribers: set[Subscription] = field(default_factory=set)
    sent_at: float = float("-inf")
    stage: tuple[str, str | None] | None = None  # (status, stage) of the last frame sent
    waiting: ProgressEvent | None = None
    timer: asyncio.TimerHandle | None = None


@dataclass
class _Storing:
    """A job's event published but not yet in the store, and its frame once encoded."""

    event: ProgressEvent
    encoded: Frame | None = None


class Hub:
    """Routes each published event to the subscriptions of its job.

    Also holds the limits its streams obey: `soft_limit` unread bytes before a stream's
    progress frames are coalesced, `write_timeout` seconds a stream may stay behind before
    it is cut off, `queue_size` frames kept for a stream during its replay,
    `max_subscribers` open at once and `max_per_user` open by one user (more are refused,
    as during shutdown; None: no cap). The per-user cap keeps one user from holding every
    stream and locking everyone else out.
    """

    def __init__(
        self,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
        max_subscribers: int | None = DEFAULT_MAX_SUBSCRIBERS,
        max_per_user: int | None = None,
        soft_limit: int = DEFAULT_SOFT_LIMIT,
        heartbeat: float = DEFAULT_HEARTBEAT,
        deliveries_per_second: float = DEFAULT_DELIVERIES_PER_SECOND,
        hold: float = DEFAULT_HOLD,
        watcher: Watcher | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        for name, value in (("write_timeout", write_timeout), ("heartbeat", heartbeat),
                            ("deliveries_per_second", deliveries_per_second), ("soft_limit", soft_limit)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        self.stats = HubStats()
        self.queue_size = queue_size
        self.write_timeout = write_timeout
        self.soft_limit = soft_limit
        self.max_subscribers = max_subscribers
        self.max_per_user = max_per_user
        self.heartbeat = heartbeat
        self._deliveries = deliveries_per_second
        self._hold = hold
        self._watcher = watcher  # None: the events are published in this process
        self._by_user: Counter[str] = Counter()
        self._jobs: dict[str, _Pace] = {}
        self._storing: dict[str, list[_Storing]] = {}  # job id -> its events being stored, oldest first
        self._count = 0
        self._closed = False
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscriber_count(self) -> int:
        return self._count

    def user_count(self, user: str) -> int:
        """Open subscriptions of `user`."""
        return self._by_user[user]

    def publish(self, event: ProgressEvent, *, storing: bool = False) -> None:
        """Hand `event` to every subscriber of its job, now or at its turn; never blocks.
        `storing`: the caller stores the event next and then calls `stored`; until then the
        hub gives it to new subscribers, whose replay of the log cannot have it."""
        self.stats.events_published += 1
        if storing:
            self._storing.setdefault(event.job_id, []).append(_Storing(event))
        pace = self._jobs.get(event.job_id)
        if pace is None:
            return
        if pace.waiting is not None:
            self.stats.events_paced += 1
            pace.waiting = None
        loop = asyncio.get_running_loop()
        spacing = self._count / self._deliveries
        turn = pace.sent_at + spacing
        if event.terminal or (event.status, event.stage) != pace.stage or spacing < UNPACED or loop.time() >= turn:
            self._send(pace, event)
            return
        # Held until its turn: a fresher event that comes by then (or within the hold after it)
        # replaces it and goes instead; if the producer falls quiet, the held one goes itself.
        pace.waiting = event
        if pace.timer is None:
            pace.timer = loop.call_at(turn + self._hold, self._on_turn, event.job_id)

    def stored(self, event: ProgressEvent) -> None:
        """`event`, published with `storing=True`, is in the store now (or will never be):
        a replay of the log shows it from here on."""
        storing = self._storing.get(event.job_id, [])
        storing[:] = [entry for entry in storing if entry.event is not event]
        if not storing:
            self._storing.pop(event.job_id, None)

    def subscribe(self, job_id: str, user: str | None = None, after_seq: int = 0) -> Subscription:
        """A new subscription of `user` (None: not counted per user); already
        closed when shutting down or when the total or the user's cap is reached.
        `after_seq`: the job's last seq as the stream read it before subscribing; the
        watcher, if any, feeds the job's events after it."""
        subscription = Subscription(self, job_id, user)
        if self._closed:
            subscription.close()
        elif self.max_subscribers is not None and self._count >= self.max_subscribers:
            self.stats.subscribers_refused += 1
            subscription.close()
        elif user is not None and self.max_per_user is not None and self._by_user[user] >= self.max_per_user:
            self.stats.subscribers_refused_user += 1
            subscription.close()
        else:
            if job_id not in self._jobs:
                self._jobs[job_id] = _Pace()
                if self._watcher is not None:
                    self._watcher.watch(job_id, after_seq)
            self._jobs[job_id].subscribers.add(subscription)
            self._count += 1
            # Published before it came, these may be stored only after its replay read the log.
            for storing in self._storing.get(job_id, ()):
                subscription.deliver(self._encode(storing.event))
            if user is not None:
                self._by_user[user] += 1
            if self._sweeper is None:
                self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="sse-sweeper")
        return subscription

    def discard(self, subscription: Subscription) -> None:
        """Forget `subscription` (called by `Subscription.close`)."""
        pace = self._jobs.get(subscription.job_id)
        if pace is None or subscription not in pace.subscribers:
            return
        pace.subscribers.remove(subscription)
        self._count -= 1
        if subscription.user is not None:
            self._by_user[subscription.user] -= 1
            if not self._by_user[subscription.user]:
                del self._by_user[subscription.user]  # no entry per user who ever watched
        if not pace.subscribers:
            if pace.timer is not None:
                pace.timer.cancel()
            del self._jobs[subscription.job_id]
            if self._watcher is not None:
                self._watcher.unwatch(subscription.job_id)

    def close(self) -> None:
        """End every subscription now and refuse new ones (server shutdown)."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for pace in tuple(self._jobs.values()):
            for subscription in tuple(pace.subscribers):
                subscription.close()

    def _send(self, pace: _Pace, event: ProgressEvent) -> None:
        if pace.timer is not None:
            pace.timer.cancel()
            pace.timer = None
        pace.sent_at = asyncio.get_running_loop().time()
        pace.stage = (event.status, event.stage)
        encoded = self._encode(event)
        for subscription in tuple(pace.subscribers):
            subscription.deliver(encoded)

    def _encode(self, event: ProgressEvent) -> Frame:
        """The event's one frame: encoded once, also when new subscribers take it while it is stored."""
        storing = self._find_storing(event)
        if storing is None:
            return self._new_frame(event)
        if storing.encoded is None:
            storing.encoded = self._new_frame(event)
        return storing.encoded

    def _new_frame(self, event: ProgressEvent) -> Frame:
        self.stats.frames_encoded += 1
        return frame(event)

    def _find_storing(self, event: ProgressEvent) -> _Storing | None:
        for storing in self._storing.get(event.job_id, ()):
            if storing.event is event:
                return storing
        return None

    def _on_turn(self, job_id: str) -> None:
        pace = self._jobs.get(job_id)
        if pace is None:
            return
        pace.timer = None
        if pace.waiting is not None:
            event, pace.waiting = pace.waiting, None
            self._send(pace, event)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + self.heartbeat
        while True:
            await asyncio.sleep(min(SWEEP, self.heartbeat))
            now = loop.time()
            ping = now >= next_ping
            if ping:
                next_ping = now + self.heartbeat
            for pace in tuple(self._jobs.values()):
                for subscription in tuple(pace.subscribers):
                    try:
                        subscription.tick(now, ping)
                    except Exception:  # one broken socket must not stop the sweeps of all the others
                        log.exception("event stream of job %s: sweep failed; closing it", subscription.job_id)
                        subscription.close()
