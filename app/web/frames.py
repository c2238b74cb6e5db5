"""Events as ready wire bytes: built once per event, written as they are to every stream.

A `Frame` holds an event's SSE block twice: plain (HTTP/1.0 streams end with the connection)
and as one HTTP/1.1 chunk (`<hex length>\\r\\n<block>\\r\\n`). Streams write it straight to
their socket, so the fan-out of an event to ten thousand subscribers costs ten thousand
socket writes and no encoding at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from app.web import sse
from app.web.links import links
from saga.events import ProgressEvent


def chunk(block: bytes) -> bytes:
    """`block` as one chunk of a chunked HTTP/1.1 body."""
    return b"%x\r\n%b\r\n" % (len(block), block)


LAST_CHUNK = b"0\r\n\r\n"  # ends a chunked body
_PING = sse.comment("ping")
_PING_CHUNK = chunk(_PING)


def ping(chunked: bool) -> bytes:
    """The heartbeat: a comment, which clients ignore."""
    return _PING_CHUNK if chunked else _PING


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    status: str
    stage: str | None
    block: bytes  # the event, then `done` when terminal
    chunked: bytes  # the same, as one HTTP/1.1 chunk
    terminal: bool  # a field, not a property: read once per subscriber in the fan-out

    def wire(self, chunked: bool) -> bytes:
        return self.chunked if chunked else self.block


def frame(event: ProgressEvent) -> Frame:
    """The one encoding of a live event."""
    block = event_block(event.seq, event.to_json())
    if event.terminal:
        block += done_block(event)
    return Frame(event.seq, event.status, event.stage, block, chunk(block), event.terminal)


def event_block(seq: int, data: str, name: str = "progress") -> bytes:
    """An event whose JSON `data` is sent as it is (one line: see ProgressEvent.to_json)."""
    return f"id: {seq}\nevent: {name}\ndata: {data}\n\n".encode()


def done_block(end: ProgressEvent) -> bytes:
    """`done` repeats the terminal event's verdict on the timetable, for clients that read only it."""
    verdict = {"feasible": end.feasible, "unplaced": end.unplaced, "hard_violations": end.hard_violations}
    return sse.event(sse.json_text({"status": end.status, **verdict, "links": links(end.job_id)}), name="done")
