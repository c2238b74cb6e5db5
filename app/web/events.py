"""`GET /api/jobs/{id}/events`: a job's progress as server-sent events.

A stream connects in three steps: it subscribes to the hub (so nothing published meanwhile
is lost), writes what the client missed from the job's log as stored, then goes live: from
then on the hub writes each event's ready bytes to its socket (app/web/subscription.py),
which the subscription has taken over from aiohttp (app/web/connections.py), and the
handler returns. Nothing runs per stream while it is idle.

Any status but 200 closes a browser's EventSource for good, so only a job the caller may
not see gets an error (404). Shutdown, overload (too many streams in total or of this
user) or a store outage answer 200 with the `retry` hint and end the stream: the browser
comes back after `retry` milliseconds, with `Last-Event-ID`, and misses nothing.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import HttpVersion11, web

from app.security.auth import visible_head
from app.storage.store import JobHead, Store, StoreUnavailable
from app.web import sse
from app.web.connections import hand_over
from app.web.errors import ApiError
from app.web.frames import done_block, event_block
from app.web.hub import Hub
from app.web.keys import HUB, STORE, USER
from app.web.subscription import Subscription
from saga.events import TERMINAL

RETRY_MS = 3000
log = logging.getLogger(__name__)


def resume_after(request: web.Request) -> int:
    """The seq the client saw last: `Last-Event-ID` (set by a reconnecting
    EventSource) beats `?last_event_id=` (a first connect); 0 when neither parses."""
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or ""
    try:
        return max(int(raw.strip()), 0)
    except ValueError:
        return 0


async def missed(store: Store, head: JobHead, after: int) -> tuple[list[bytes], int, bool]:
    """What the client missed from the job's log: (one block per SSE event, the last seq in
    them, whether the stream is over). Stored events are sent as stored, never decoded and
    encoded again."""
    stored = await store.events_after(head.id, after)
    if stored is None:  # the bounded log lost some: start the client over from the latest state
        latest = await store.latest_event(head.id)
        if latest is None:
            return [], after, False
        block = event_block(latest.seq, latest.to_json(), name="snapshot")
        return [block, done_block(latest)] if latest.terminal else [block], latest.seq, latest.terminal
    blocks = []
    for event in stored:
        blocks.append(event_block(event.seq, event.data))
        after = event.seq
        if event.terminal:
            blocks.append(done_block(event.event()))
            return blocks, after, True
    if head.status in TERMINAL:  # the client had seen the end already; tell it again
        end = await store.latest_event(head.id)  # the terminal event: a job's status moves with its events
        if end is not None:
            return [done_block(end)], after, True
        return [], after, True
    return blocks, after, False


async def stream(request: web.Request) -> web.StreamResponse:
    """GET /api/jobs/{id}/events."""
    job_id = request.match_info["id"]
    hub = request.app[HUB]
    try:
        head: JobHead | None = await visible_head(request, job_id)
    except ApiError:  # a job the caller may not see: answered by the error middleware, in JSON
        raise
    except StoreUnavailable as err:  # Redis away: any status but 200 would make the browser give up
        log.warning("event stream of job %s: %s", job_id, err.reason)
        head = None
    except Exception:  # the store is broken: ask the browser to come back, not to give up
        log.exception("event stream of job %s: store unavailable", job_id)
        head = None
    user = request.get(USER)
    after_seq = head.last_seq if head is not None else 0
    with hub.subscribe(job_id, user.name if user is not None else None, after_seq) as subscription:
        response = web.StreamResponse(status=200, headers=sse.STREAM_HEADERS)
        chunked = request.version >= HttpVersion11
        if chunked:  # said explicitly: live frames are written to the socket as ready-made chunks
            response.enable_chunked_encoding()
        # The connection ends with the stream (a live one is no longer aiohttp's to keep alive):
        # `Connection: close` tells pooling clients not to send another request on it.
        response.force_close()
        await response.prepare(request)
        hub.stats.open_connections += 1
        try:
            if await _replay(request, response, hub, subscription, head, chunked):
                _go_on_without_aiohttp(request, subscription)
        except ConnectionResetError:  # includes aiohttp's ClientConnectionResetError: the client left
            pass
        finally:
            if not subscription.owns_socket:
                hub.stats.open_connections -= 1
    return response


def _go_on_without_aiohttp(request: web.Request, subscription: Subscription) -> None:
    """Live: the hub writes to the socket, and the stream may stay open for hours. The
    subscription takes the socket from aiohttp, which frees its request, parser and tasks
    (about 7 KB a stream) and leaves the ending of the response to the subscription. Should
    aiohttp not let go, the stream ends here and the browser comes back after `retry`."""
    if subscription.closed:  # it ended as it went live: aiohttp ends the response as usual
        return
    transport = request.transport
    if transport is not None and hand_over(transport, subscription):
        subscription.take_socket()


async def _replay(
    request: web.Request, response: web.StreamResponse, hub: Hub, subscription: Subscription,
    head: JobHead | None, chunked: bool,
) -> bool:
    """Write the greeting and what the client missed; True when the stream goes live."""
    if head is None or subscription.closed:
        await response.write(sse.retry(RETRY_MS))
        return False
    # An id beyond the job's last one cannot be genuine; it must not mute the stream.
    after = min(resume_after(request), head.last_seq)
    # Through aiohttp's writer, which sends the headers first; live frames go to the socket after.
    await response.write(sse.retry(RETRY_MS) + sse.event(sse.json_text({"job_id": head.id}), name="connected"))
    hub.stats.events_sent += 1
    try:
        blocks, subscription.last_seq, ended = await missed(request.app[STORE], head, after)
    except Exception:  # store outage mid-replay: end; the reconnect resumes from where it was
        log.exception("event stream of job %s: replay failed", head.id)
        return False
    if blocks and not await _write_replay(request, response, hub, b"".join(blocks)):
        return False
    hub.stats.events_sent += len(blocks)
    transport = request.transport
    if ended or transport is None:
        return False
    subscription.go_live(transport, chunked)
    return True


async def _write_replay(request: web.Request, response: web.StreamResponse, hub: Hub, data: bytes) -> bool:
    """One write of the replay; a client that takes none of it for `write_timeout` is cut off."""
    try:
        async with asyncio.timeout(hub.write_timeout):
            await response.write(data)
    except TimeoutError:
        hub.stats.subscribers_dropped += 1
        if request.transport is not None:
            request.transport.abort()
        return False
    return True


async def close_streams(app: web.Application) -> None:
    """on_shutdown: end every stream now instead of aiohttp waiting up to 60 s."""
    app[HUB].close()
