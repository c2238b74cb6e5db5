"""Server-sent events wire format (WHATWG HTML, "Server-sent events").

Every function returns one complete block ending in a blank line, so that a
block written in one `write()` can never be interleaved with another (a
heartbeat never lands inside an event).
"""

from __future__ import annotations

import json
import re
from typing import Any

CONTENT_TYPE = "text/event-stream; charset=utf-8"

# Headers of every event stream. `no-store` keeps caches out; `X-Accel-Buffering`
# stops nginx from buffering the stream. (The stream is never compressed: a
# compressor would hold events back until its block fills.)
STREAM_HEADERS = {
    "Content-Type": CONTENT_TYPE,
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",
}

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FORBIDDEN_IN_FIELD = re.compile(r"[\r\n\0]")


def _field(name: str, value: str) -> str:
    # A CR/LF would end the field early and let the rest forge new fields;
    # a NUL makes browsers ignore an id.
    if _FORBIDDEN_IN_FIELD.search(value):
        raise ValueError(f"SSE {name} must not contain CR, LF or NUL: {value!r}")
    return f"{name}: {value}\n"


def event(data: str, *, name: str | None = None, id: str | None = None) -> bytes:
    """One event; `data` with line breaks becomes several `data:` lines."""
    head = ""
    if id is not None:
        head += _field("id", id)
    if name is not None:
        head += _field("event", name)
    body = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    return (head + body + "\n").encode("utf-8")


def retry(milliseconds: int) -> bytes:
    """The reconnection delay hint; a block without data dispatches nothing."""
    if milliseconds < 0:
        raise ValueError(f"SSE retry must be >= 0 ms, got {milliseconds}")
    return f"retry: {int(milliseconds)}\n\n".encode("ascii")


def comment(text: str = "ping") -> bytes:
    """A comment block, ignored by clients; used as a heartbeat."""
    return b"".join(f": {line}\n".encode("utf-8") for line in _LINE_BREAK.split(text)) + b"\n"


def json_text(data: Any) -> str:
    """Compact JSON on one line: an event's `data` field."""
    return json.dumps(data, separators=(",", ":"))
