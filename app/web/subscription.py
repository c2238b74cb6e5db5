"""One open event stream as the hub sees it: a socket that frames are written to.

Writing never waits. A frame goes straight into the socket's transport unless that
transport already holds `soft_limit` bytes the client has not read: then a progress frame
is held (a newer one replaces it, the older is counted as coalesced) and written once the
client has caught up, while a terminal frame is always written, so even a slow reader
learns how the job ended. A client that stays behind for `write_timeout` seconds is cut
off: it costs the process its buffer and nothing else. The stream ends after the terminal
frame once the client has read it (so the end of the response never waits on a stalled
socket), or when it is cut off.

Once live, the subscription owns its socket (aiohttp has let go of it, see
app/web/connections.py): ending the stream ends the chunked body and closes the socket,
and the socket closing ends the stream.

Until the stream has replayed what the client missed from the job's log, live frames are
kept in order (coalesced past `queue_size`) and written after the replay, so the seam
between log and live has no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING

from app.web import frames
from app.web.frames import Frame

if TYPE_CHECKING:
    from app.web.hub import Hub


class Subscription:
    __slots__ = (
        "job_id", "user", "last_seq", "coalesced",
        "_hub", "_transport", "_chunked", "_held", "_pending", "_stalled_since", "_finishing", "_closed", "_owns",
    )

    def __init__(self, hub: Hub, job_id: str, user: str | None) -> None:
        self.job_id = job_id
        self.user = user
        self.last_seq = 0  # the newest seq the client has: never written again
        self.coalesced = 0  # progress frames this client never got
        self._hub = hub
        self._transport: asyncio.Transport | None = None  # set once live
        self._chunked = False
        self._held: list[Frame] = []  # live frames that came during the replay
        self._pending: Frame | None = None  # the newest progress frame a slow client has not got
        self._stalled_since: float | None = None
        self._finishing = False  # the terminal frame is written but not yet read
        self._closed = False
        self._owns = False  # the socket: aiohttp has let go of it

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def live(self) -> bool:
        return self._transport is not None and not self._closed

    @property
    def owns_socket(self) -> bool:
        return self._owns

    def take_socket(self) -> None:
        """aiohttp has let go of the live stream's socket: closing the stream is ours now."""
        assert self._transport is not None and not self._closed
        self._owns = True

    def go_live(self, transport: asyncio.Transport, chunked: bool) -> None:
        """The replay is written: from now on frames go to `transport` at once."""
        if self._closed:
            return
        self._transport, self._chunked = transport, chunked
        held, self._held = self._held, []
        for held_frame in held:
            self.deliver(held_frame)

    def deliver(self, frame: Frame) -> None:
        """Hand `frame` to the client without ever waiting."""
        # The common case, inline: it runs once per subscriber per event, so its cost is the fan-out's.
        transport = self._transport
        if (transport is not None and self._pending is None and not frame.terminal and frame.seq > self.last_seq
                and not self._closed and not self._finishing and not transport.is_closing()
                and transport.get_write_buffer_size() < self._hub.soft_limit):
            transport.write(frame.chunked if self._chunked else frame.block)
            self.last_seq = frame.seq
            self._hub.stats.events_sent += 1
            return
        self._deliver_carefully(frame)

    def _deliver_carefully(self, frame: Frame) -> None:
        """`deliver` for every case but a progress frame to a live stream that keeps up."""
        if self._closed or self._finishing or frame.seq <= self.last_seq:
            return
        if self._transport is None:
            self._hold(frame)
            return
        if self._transport.is_closing():
            self.close()
            return
        if self._behind() and not frame.terminal:
            self._coalesce(frame)
            return
        if self._pending is not None:  # superseded by `frame`
            self._count_coalesced(1)
            self._pending = None
        self._write(frame)

    def tick(self, now: float, ping: bool) -> None:
        """The hub's sweep: notice a client that left, catch up a slow one, cut off one
        stuck for too long, and write a heartbeat when `ping` says it is due."""
        transport = self._transport
        if transport is None or self._closed:
            return
        if transport.is_closing():
            self.close()
            return
        if not self._behind():
            self._stalled_since = None
            if self._finishing:  # the client has read the terminal frame's bytes, or most of them
                self.close()
            elif self._pending is not None:
                pending, self._pending = self._pending, None
                self._write(pending)
            elif ping:
                transport.write(frames.ping(self._chunked))
            return
        if self._stalled_since is None:
            self._stalled_since = now
        elif now - self._stalled_since >= self._hub.write_timeout:
            self._hub.stats.subscribers_dropped += 1
            transport.abort()
            self.close()

    def close(self) -> None:
        """Stop: nothing more is written; an owned socket gets the end of the body and is closed."""
        if self._closed:
            return
        self._closed = True
        self._held.clear()
        self._pending = None
        self._hub.discard(self)
        if self._owns:
            self._end_response()

    def _end_response(self) -> None:
        assert self._transport is not None
        if self._chunked and not self._transport.is_closing():
            self._transport.write(frames.LAST_CHUNK)
        self._transport.close()  # after what is buffered is sent; a no-op on an aborted one
        self._hub.stats.open_connections -= 1

    def _behind(self) -> bool:
        assert self._transport is not None
        return self._transport.get_write_buffer_size() >= self._hub.soft_limit

    def _hold(self, frame: Frame) -> None:
        if self._held and self._held[-1].terminal:  # nothing follows the end
            return
        if len(self._held) >= self._hub.queue_size:
            kept = [held for held in self._held if held.terminal]
            self._count_coalesced(len(self._held) - len(kept))
            self._held = kept
        self._held.append(frame)

    def _coalesce(self, frame: Frame) -> None:
        if self._pending is not None:
            self._count_coalesced(1)
        self._pending = frame

    def _count_coalesced(self, n: int) -> None:
        self.coalesced += n
        self._hub.stats.events_coalesced += n

    def _write(self, frame: Frame) -> None:
        assert self._transport is not None
        self._transport.write(frame.wire(self._chunked))
        self.last_seq = frame.seq
        self._hub.stats.events_sent += 2 if frame.terminal else 1  # the event, and `done`
        if not frame.terminal:
            return
        if self._behind():  # end once the client has read it, or cut it off at write_timeout (tick)
            self._finishing = True
            self._held.clear()
        else:
            self.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._owns:  # an owned stream lives on after its handler
            self.close()
