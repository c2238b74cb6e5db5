"""Reading a request body so that bad bytes are the client's 4xx, never our 500.

aiohttp's `request.text()` and `request.json()` decode with whatever charset the
client names (`bogus` raises LookupError, `utf-16` decodes garbage, invalid UTF-8
raises UnicodeDecodeError) and `json.loads` raises RecursionError on JSON nested
100,000 deep. Every reader here turns each of those into an `ApiError`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from app.web.errors import ApiError, bad_request

# ASCII is a subset of UTF-8, so a body that says so is read the same way.
UTF8_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_SHOWN = 40  # characters of a client's value quoted back in a message


def require_utf8_charset(request: web.Request) -> None:
    """415 when the Content-Type names a charset other than UTF-8 (or ASCII)."""
    charset = request.charset
    if charset is not None and charset.lower() not in UTF8_CHARSETS:
        raise ApiError(415, "unsupported_media_type",
                       f"Send the body as UTF-8 (charset=utf-8), not charset={charset[:_SHOWN]!r}.")


def decode_utf8(raw: bytes, where: str) -> str:
    """`raw` as UTF-8 text (a leading byte order mark is kept for the reader to drop)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise bad_request(f"The {where} is not valid UTF-8 (byte {err.start} is {raw[err.start]:#04x}).") from None


def parse_json(text: str, where: str = "Body") -> Any:
    """`json.loads`, with every way it can fail as a 400."""
    try:
        return json.loads(text)
    except RecursionError:
        # The C decoder counts its own depth and gives up cleanly past the recursion limit.
        raise bad_request(f"{where} is JSON nested too deeply.") from None
    except ValueError as err:  # JSONDecodeError, and integers over Python's digit limit
        raise bad_request(f"{where} is not valid JSON: {str(err)[:120]}.") from None


async def body_text(request: web.Request, where: str = "body") -> str:
    """The whole body as text; refuses other charsets (415) and bytes that are not UTF-8 (400)."""
    require_utf8_charset(request)
    return decode_utf8(await request.read(), where)


async def json_body(request: web.Request) -> Any:
    """The body parsed as JSON, for small bodies read on the loop (the session's token)."""
    return parse_json(await body_text(request))
