"""The SSE encoder, read back by httpx-sse's independent decoder."""

from __future__ import annotations

import pytest
from httpx_sse import ServerSentEvent
from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from hypothesis import given
from hypothesis import strategies as st

from app.web import sse


def decode(wire: bytes) -> list[ServerSentEvent]:
    lines = SSELineDecoder().decode(wire.decode("utf-8"))
    decoder = SSEDecoder()
    return [e for e in map(decoder.decode, lines) if e is not None]


def test_event_fields_read_back() -> None:
    [got] = decode(sse.event('{"a": 1}', name="progress", id="17"))
    assert (got.event, got.id, got.data) == ("progress", "17", '{"a": 1}')


def test_multiline_payload_becomes_several_data_lines() -> None:
    wire = sse.event("one\ntwo\r\nthree\rfour")
    assert wire.count(b"data: ") == 4
    assert b"\r" not in wire
    [got] = decode(wire)
    assert got.data == "one\ntwo\nthree\nfour"


def test_each_block_ends_with_a_blank_line() -> None:
    for block in (sse.event("x", name="a", id="1"), sse.retry(3000), sse.comment()):
        assert block.endswith(b"\n\n") and not block.endswith(b"\n\n\n")


@pytest.mark.parametrize("bad", ["1\n2", "1\r", "a\r\nid: 9", "x\0"])
def test_id_and_event_never_carry_line_breaks(bad: str) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        sse.event("x", id=bad)
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        sse.event("x", name=bad)


def test_retry_hint() -> None:
    [got] = decode(sse.retry(3000))
    assert got.retry == 3000 and got.data == ""
    with pytest.raises(ValueError, match="retry"):
        sse.retry(-1)


def test_comment_dispatches_nothing() -> None:
    assert sse.comment() == b": ping\n\n"
    assert decode(sse.comment("two\nlines")) == []


def test_headers_name_the_stream_and_forbid_caching() -> None:
    assert sse.STREAM_HEADERS["Content-Type"] == "text/event-stream; charset=utf-8"
    assert sse.STREAM_HEADERS["Cache-Control"] == "no-store"
    assert sse.STREAM_HEADERS["X-Accel-Buffering"] == "no"


# Lone surrogates are left out: UTF-8 cannot carry them (payloads are ASCII JSON anyway).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)))
NAME = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"), min_size=1)


@given(TEXT, NAME)
def test_any_payload_round_trips(data: str, name: str) -> None:
    name = name.strip() or "e"
    [got] = decode(sse.event(data, name=name, id="5"))
    assert got.data == data.replace("\r\n", "\n").replace("\r", "\n")
    assert (got.event, got.id) == (name, "5")
