"""Bad input is the client's 4xx with the JSON error shape, never a 500 or a traceback
(issue 10, item 8), over real sockets with the real runner."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
from aiohttp import FormData

from app.config import Config
from app.web.keys import RUNNER
from tests.app_support import ALICE, BUSY_CTT, TOY_CTT, Client, config, error_of, start, submit

__all__ = ["config"]  # a fixture, used by name

DEEP = "[" * 100_000 + "]" * 100_000
MULTIPART_BODY = b'--b\r\nContent-Disposition: form-data; name="instance"; filename="t.ctt"\r\n\r\n' + TOY_CTT.encode()


@pytest.mark.parametrize(
    ("path", "content_type", "body", "status", "detail"),
    [
        ("/api/jobs", "text/plain", b"Name: \xff\xfe\n" + TOY_CTT.encode(), 400, "not valid UTF-8 (byte 6 is 0xff)"),
        ("/api/jobs", "text/plain; charset=bogus", TOY_CTT.encode(), 415, "charset='bogus'"),
        ("/api/jobs", "text/plain; charset=utf-16", TOY_CTT.encode("utf-16"), 415, "charset='utf-16'"),
        ("/api/jobs", "application/json", json.dumps({"ctt": TOY_CTT}).encode() + b"\xff", 400, "not valid UTF-8"),
        ("/api/jobs", "application/json; charset=bogus", b'{"sample": "small"}', 415, "UTF-8"),
        ("/api/jobs", "application/json", DEEP.encode(), 400, "nested too deeply"),
        ("/api/jobs", "application/json", ('{"sample": ' + DEEP + "}").encode(), 400, "nested too deeply"),
        ("/api/jobs", "application/json", b'{"sample": "small", "seed": 1' + b"0" * 400 + b"}", 400, "'seed'"),
        ("/api/jobs", "application/json", b'{"sample": "small", "seed": 1' + b"0" * 5000 + b"}", 400, "not valid JSON"),
        ("/api/jobs", "multipart/form-data", MULTIPART_BODY + b"\r\n--b--\r\n", 400, "boundary"),
        ("/api/jobs", "multipart/form-data; boundary=", MULTIPART_BODY + b"\r\n--b--\r\n", 400, "boundary"),
        ("/api/jobs", "multipart/form-data; boundary=b", MULTIPART_BODY, 400, "multipart body could not be read"),
        ("/api/jobs", "multipart/form-data; boundary=b", b"--b\r\nno headers at all", 400, "multipart"),
        ("/api/session", "application/json", DEEP.encode(), 400, "nested too deeply"),
        ("/api/session", "application/json", b'{"token": "\xff"}', 400, "not valid UTF-8"),
        ("/api/session", "application/json; charset=utf-16", '{"token": "x"}'.encode("utf-16"), 415, "UTF-8"),
    ],
    ids=["ctt-not-utf8", "charset-bogus", "charset-utf16", "json-not-utf8", "json-charset-bogus", "json-deep",
         "json-deep-field", "seed-too-large-for-float", "seed-over-digit-limit", "multipart-no-boundary",
         "multipart-empty-boundary", "multipart-unterminated", "multipart-garbage", "session-deep",
         "session-not-utf8", "session-utf16"],
)
async def test_malformed_bodies_are_4xx_json_and_no_traceback(
    aiohttp_client: Client, config: Config, caplog: pytest.LogCaptureFixture,
    path: str, content_type: str, body: bytes, status: int, detail: str,
) -> None:
    client, _ = await start(aiohttp_client, replace(config, max_body=1024 * 1024))  # room for 100,000 deep
    with caplog.at_level(logging.INFO):
        resp = await client.post(path, data=body, headers={**ALICE, "Content-Type": content_type})
        assert detail in await error_of(resp, status)
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize(
    ("kind", "body", "query", "detail"),
    [
        ("json", {"ctt": TOY_CTT, "time_limt": 5}, {}, "'time_limt'"),
        ("json", {"sample": "small", "Seed": 3}, {}, "'Seed'"),
        ("json", {"sample": "small"}, {"time_limit": "5"}, "Query parameter 'time_limit' is not read"),
        ("text", TOY_CTT, {"time_limt": "5"}, "Query parameter 'time_limt' is unknown"),
        ("text", TOY_CTT, {"name": ["a", "b"]}, "'name' is given more than once"),
        ("form", {"time-limit": "5"}, {}, "Form field 'time-limit' is unknown"),
    ],
    ids=["json-misspelt", "json-capitalised", "json-with-query", "query-misspelt", "query-twice", "form-misspelt"],
)
async def test_unknown_fields_are_refused_by_name(
    aiohttp_client: Client, config: Config, kind: str, body: object, query: dict[str, object], detail: str,
) -> None:
    client, _ = await start(aiohttp_client, config)
    if kind == "json":
        resp = await client.post("/api/jobs", json=body, params=query, headers=ALICE)
    elif kind == "text":
        pairs = [(k, v) for k, vs in query.items() for v in (vs if isinstance(vs, list) else [vs])]
        resp = await client.post("/api/jobs", data=body, params=pairs, headers={**ALICE, "Content-Type": "text/plain"})
    else:
        form = FormData()
        form.add_field("instance", TOY_CTT.encode(), filename="toy.ctt")  # a file makes it multipart
        for key, value in body.items():  # type: ignore[union-attr]
            form.add_field(key, value)
        resp = await client.post("/api/jobs", data=form, headers=ALICE)
    assert detail in await error_of(resp, 400)


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("two\r\nlines", "U+000D"),
        ("nul\x00byte", "U+0000"),
        ("evil\u202efdp.exe", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("tab\there", "U+0009"),
        ("x" * 101, "at most 100 characters"),
    ],
    ids=["crlf", "nul", "bidi-override", "tab", "too-long"],
)
async def test_odd_job_names_are_refused(aiohttp_client: Client, config: Config, name: str, detail: str) -> None:
    client, _ = await start(aiohttp_client, config)
    resp = await client.post("/api/jobs", json={"sample": "small", "name": name}, headers=ALICE)
    assert "'name'" in (got := await error_of(resp, 400)) and detail in got


@pytest.mark.parametrize(
    ("old", "new", "detail"),
    [
        ("Name: Toy", "Name: Toy\u202eyoT", "line 1: U+202E"),
        ("SceCosC Ocra", "SceCosC Oc\x00ra", "line 10: U+0000"),
        ("ArcTec Indaco", "ArcTec Ind\x1baco", "line 11: U+001B"),
    ],
    ids=["bidi-in-name", "nul-in-teacher", "escape-in-teacher"],
)
async def test_odd_characters_in_an_instance_are_refused_by_line(
    aiohttp_client: Client, config: Config, old: str, new: str, detail: str
) -> None:
    client, _ = await start(aiohttp_client, config)
    resp = await client.post("/api/jobs", data=TOY_CTT.replace(old, new).encode(),
                             headers={**ALICE, "Content-Type": "text/plain"})
    assert detail in await error_of(resp, 400)


async def test_a_job_cancelled_while_queued_has_no_timetable(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, replace(config, slots=1))
    running = await submit(client, BUSY_CTT, time_limit="30")
    queued = await submit(client, BUSY_CTT, time_limit="30")
    resp = await client.delete(f"/api/jobs/{queued}", headers=ALICE)
    assert resp.status == 202 and await resp.json() == {"status": "cancelled"}
    for fmt in ("json", "sol", "csv"):
        resp = await client.get(f"/api/jobs/{queued}/timetable", params={"format": fmt}, headers=ALICE)
        assert "no timetable" in await error_of(resp, 404)
    await client.delete(f"/api/jobs/{running}", headers=ALICE)
    await app[RUNNER].wait(running)
