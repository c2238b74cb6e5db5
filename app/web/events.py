"""`GET /api/jobs/{id}/events`: a job's progress as server-sent events.

Any status but 200 closes a browser's EventSource for good, so only a job the
caller may not see gets an error (404). Shutdown, overload (too many streams
in total or of this user) or a store outage answer 200 with the `retry` hint
and end the stream: the browser comes back after `retry` milliseconds, with
`Last-Event-ID`, and misses nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from app.security.auth import visible_job
from app.storage.store import JobRecord, Store, StoreUnavailable
from app.web import sse
from app.web.errors import ApiError
from app.web.hub import Hub, Subscription
from app.web.jobs import links
from app.web.keys import CONFIG, HUB, STORE, USER
from saga.events import TERMINAL, ProgressEvent

RETRY_MS = 3000
LIVENESS_CHECK = 1.0  # seconds between looks at an idle stream's socket
log = logging.getLogger(__name__)


def resume_after(request: web.Request) -> int:
    """The seq the client saw last: `Last-Event-ID` (set by a reconnecting
    EventSource) beats `?last_event_id=` (a first connect); 0 when neither parses."""
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or ""
    try:
        return max(int(raw.strip()), 0)
    except ValueError:
        return 0


class EventStream:
    """One open stream: writes whole SSE blocks, remembers the last id sent."""

    def __init__(self, request: web.Request, response: web.StreamResponse, hub: Hub, last_seq: int) -> None:
        self._request = request
        self._response = response
        self._hub = hub
        self.last_seq = last_seq  # the newest seq the client has: never sent again

    def client_gone(self) -> bool:
        # aiohttp does not cancel a handler whose client left; look at the socket.
        transport = self._request.transport
        return transport is None or transport.is_closing()

    async def write(self, block: bytes, events: int = 1) -> bool:
        """One write of whole blocks; False once the client is gone or dropped."""
        try:
            async with asyncio.timeout(self._hub.write_timeout):
                await self._response.write(block)
        except TimeoutError:
            # The socket stayed unwritable: this reader costs memory and nothing else.
            self._hub.stats.subscribers_dropped += 1
            if self._request.transport is not None:
                self._request.transport.abort()
            return False
        except ConnectionResetError:  # includes aiohttp's ClientConnectionResetError
            return False
        self._hub.stats.events_sent += events
        return True

    async def send(self, event: ProgressEvent, name: str = "progress") -> bool:
        """The event with `id: seq`, followed by `done` when it is terminal."""
        self.last_seq = event.seq
        block = sse.event(_json(event.to_dict()), name=name, id=str(event.seq))
        if not event.terminal:
            return await self.write(block)
        return await self.write(block + _done(event), events=2)

    async def finish(self, end: ProgressEvent) -> bool:
        return await self.write(_done(end))

    async def heartbeat(self) -> bool:
        return not self.client_gone() and await self.write(sse.comment("ping"), events=0)


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _done(end: ProgressEvent) -> bytes:
    """`done` repeats the terminal event's verdict on the timetable, for clients that read only it."""
    verdict = {"feasible": end.feasible, "unplaced": end.unplaced, "hard_violations": end.hard_violations}
    return sse.event(_json({"status": end.status, **verdict, "links": links(end.job_id)}), name="done")


async def replay(out: EventStream, store: Store, job: JobRecord) -> bool:
    """Send what the client missed from the job's log; True when the stream is over."""
    events = await store.events_after(job.id, out.last_seq)
    if events is None:  # the bounded log lost some: start the client over from the latest state
        latest = await store.latest_event(job.id)
        events = []
        if latest is not None:
            await out.send(latest, name="snapshot")
            if latest.terminal:
                return True
    for event in events:
        if not await out.send(event) or event.terminal:
            return True
    if job.status in TERMINAL:  # the client had seen the end already; tell it again
        end = await store.latest_event(job.id)  # the terminal event: a job's status moves with its events
        if end is not None:
            await out.finish(end)
        return True
    return out.client_gone()


async def follow(out: EventStream, subscription: Subscription, heartbeat: float) -> None:
    """Live events until the terminal one, the client leaving, or the hub closing.

    An idle stream looks at its socket every LIVENESS_CHECK seconds, not only at each
    heartbeat: connect/disconnect churn must not pile up subscriptions for 15 s."""
    loop = asyncio.get_running_loop()
    next_ping = loop.time() + heartbeat
    while True:
        try:
            async with asyncio.timeout(min(LIVENESS_CHECK, max(next_ping - loop.time(), 0.0))):
                event = await anext(subscription)
        except TimeoutError:
            if out.client_gone():
                return
            if loop.time() >= next_ping:
                if not await out.heartbeat():
                    return
                next_ping = loop.time() + heartbeat
            continue
        except StopAsyncIteration:  # shutdown: the client reconnects after `retry`
            return
        if event.seq <= out.last_seq:  # already sent by the replay
            continue
        if not await out.send(event) or event.terminal:
            return


async def stream(request: web.Request) -> web.StreamResponse:
    """GET /api/jobs/{id}/events."""
    job_id = request.match_info["id"]
    hub = request.app[HUB]
    try:
        job: JobRecord | None = await visible_job(request, job_id)
    except (ApiError, StoreUnavailable):  # answered by the error middleware, in JSON
        raise
    except Exception:  # the store is down: ask the browser to come back, not to give up
        log.exception("event stream of job %s: store unavailable", job_id)
        job = None
    # Subscribe before reading the log, so that nothing published meanwhile is lost.
    user = request.get(USER)
    with hub.subscribe(job_id, user.name if user is not None else None) as subscription:
        response = web.StreamResponse(status=200, headers=sse.STREAM_HEADERS)
        await response.prepare(request)
        hub.stats.open_connections += 1
        try:
            await _serve(request, response, subscription, job)
        finally:
            hub.stats.open_connections -= 1
    return response


async def _serve(
    request: web.Request, response: web.StreamResponse, subscription: Subscription, job: JobRecord | None
) -> None:
    # An id beyond the job's last one cannot be genuine; it must not mute the stream.
    after = min(resume_after(request), job.last_seq) if job is not None else 0
    out = EventStream(request, response, request.app[HUB], after)
    if job is None or subscription.closed:
        await out.write(sse.retry(RETRY_MS), events=0)
        return
    hello = sse.retry(RETRY_MS) + sse.event(_json({"job_id": job.id}), name="connected")
    if not await out.write(hello):
        return
    try:
        ended = await replay(out, request.app[STORE], job)
    except Exception:  # store outage mid-replay: end; the reconnect resumes from last_seq
        log.exception("event stream of job %s: replay failed", job.id)
        return
    if not ended:
        await follow(out, subscription, request.app[CONFIG].heartbeat)


async def close_streams(app: web.Application) -> None:
    """on_shutdown: end every stream now instead of aiohttp waiting up to 60 s."""
    app[HUB].close()
