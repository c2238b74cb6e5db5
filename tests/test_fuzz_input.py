"""Fuzzing what clients send (issue 10, acceptance): POST /api/jobs with .ctt text, JSON
and multipart bodies, and POST /api/session, against a real `serve` process. Never a
5xx, every refusal the JSON error shape, no traceback in the service's log, and the
service still solves a good job afterwards.

One slot, held by a long "blocker" job while fuzzing: a fuzzed body that happens to be
a good job is queued behind it and cancelled at once, so no solver child is started
for it. The number of examples is bounded so the module runs in well under a minute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.ctt import parse_ctt
from solver.jsonform import instance_to_json
from tests.app_support import BUSY_CTT, TOY_CTT
from tests.browser_support import ROOT, free_port, wait_until

TOKEN = "fuzz-test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
OPTION_KEYS = ("time_limit", "seed", "name", "time_limt", "Seed", "")
TOY_JSON = instance_to_json(parse_ctt(TOY_CTT))


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    blocker: str = ""

    def post(self, path: str, content: bytes, content_type: str | None, params: object = None,
             auth: bool = True) -> httpx.Response:
        headers = {**(AUTH if auth else {}), **({"Content-Type": content_type} if content_type else {})}
        return httpx.post(f"{self.url}{path}", content=content, headers=headers, params=params, timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("fuzz")
    port, log = free_port(), tmp / "service.log"
    env = {**os.environ, "TIMETABLER_ADMIN_TOKEN": TOKEN}
    command = [sys.executable, "-m", "app", "serve", "--port", str(port), "--data-dir", str(tmp / "data"),
               "--slots", "1", "--max-active-jobs", "50", "--time-limit", "2"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    service = Served(f"http://127.0.0.1:{port}", process, log)

    def healthy() -> bool:
        assert process.poll() is None, log.read_text(errors="replace")[-2000:]
        try:
            return httpx.get(f"{service.url}/api/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, 30, "the service's /api/health")
        blocker = service.post("/api/jobs", BUSY_CTT.encode(), "text/plain", params={"time_limit": "600"})
        assert blocker.status_code == 202, blocker.text
        service.blocker = blocker.json()["id"]
        yield service
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def answered_well(service: Served, resp: httpx.Response) -> None:
    """Never a 5xx; a refusal is `{"error", "detail"}`; a job accepted by chance is cancelled at once."""
    assert resp.status_code < 500, resp.text
    if resp.status_code == 202:
        job_id = resp.json()["id"]
        cancel = httpx.delete(f"{service.url}/api/jobs/{job_id}", headers=AUTH, timeout=30)
        assert cancel.json() == {"status": "cancelled"}, cancel.text  # queued behind the blocker
    elif resp.status_code >= 400:
        assert resp.headers["Content-Type"].startswith("application/json"), resp.text
        body = resp.json()
        assert set(body) == {"error", "detail"} and all(isinstance(v, str) for v in body.values()), body


# ---------------------------------------------------------------- strategies

@st.composite
def mutated_ctt(draw: st.DrawFn) -> str:
    """The toy instance with a few lines dropped, repeated or rewritten, or tokens replaced."""
    lines = TOY_CTT.splitlines()
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(("drop", "repeat", "rewrite", "token")))
        if action == "drop":
            del lines[i]
        elif action == "repeat":
            lines.insert(i, lines[i])
        elif action == "rewrite":
            lines[i] = draw(st.text(max_size=30))
        elif lines[i].split():
            words = lines[i].split()
            words[draw(st.integers(0, len(words) - 1))] = draw(st.one_of(st.integers(-10**13, 10**13).map(str),
                                                                          st.text(min_size=1, max_size=12)))
            lines[i] = " ".join(words)
        if not lines:
            break
    return "\n".join(lines) + "\n"


CTT_BODIES = st.one_of(mutated_ctt().map(str.encode), st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                       mutated_ctt().map(lambda t: t.encode("utf-16")))
TEXT_TYPES = st.sampled_from(("text/plain", "text/plain; charset=utf-8", "text/plain; charset=bogus",
                              "text/plain; charset=utf-16", "text/plain; charset=latin-1", "application/octet-stream",
                              "text/plain; charset=", "text/csv", None))
OPTIONS = st.dictionaries(st.sampled_from(OPTION_KEYS), st.one_of(st.text(max_size=12),
                                                                   st.integers(-5, 5000).map(str)), max_size=3)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    source = draw(st.sampled_from(("ctt", "instance", "sample", "none", "deep", "raw")))
    if source == "deep":
        depth = draw(st.integers(500, 120_000))
        return (draw(st.sampled_from(('{"sample": ', '{"instance": ', ""))) + "[" * depth + "]" * depth + "}").encode()
    if source == "raw":
        return draw(st.binary(max_size=200))
    body: dict[str, object] = draw(st.dictionaries(st.sampled_from(OPTION_KEYS), JSON_VALUES, max_size=3))
    if source == "ctt":
        body["ctt"] = draw(st.one_of(mutated_ctt(), JSON_VALUES))
    elif source == "instance":
        instance = json.loads(json.dumps(TOY_JSON))
        section = draw(st.sampled_from(sorted(instance)))
        instance[section] = draw(st.one_of(JSON_VALUES, st.just(instance[section][:1] if isinstance(instance[section], list) else 0)))
        body["instance"] = instance
    elif source == "sample":
        body["sample"] = draw(st.one_of(st.sampled_from(("small", "huge", "")), JSON_VALUES))
    return json.dumps(body, allow_nan=True).encode()


JSON_TYPES = st.sampled_from(("application/json", "application/json; charset=utf-8", "application/json; charset=bogus",
                              "application/json; charset=utf-16"))


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    boundary = draw(st.sampled_from(("b0undary", "", "x" * 80, '"quoted"', None)))
    real = draw(st.sampled_from(("b0undary", "other")))
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(("instance", "time_limit", "seed", "name", "time_limt", "")))
        filename = draw(st.sampled_from(("", '; filename="toy.ctt"')))
        part_type = draw(st.sampled_from(("", "Content-Type: text/plain\r\n", "Content-Type: text/plain; charset=bogus\r\n",
                                          "Content-Type: application/octet-stream\r\n")))
        content = draw(st.one_of(mutated_ctt().map(str.encode), st.binary(max_size=60), st.just(b"1")))
        parts.append(f'--{real}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n{part_type}\r\n'.encode()
                     + content + b"\r\n")
    end = draw(st.sampled_from((f"--{real}--\r\n".encode(), b"", b"--")))
    content_type = "multipart/form-data" + ("" if boundary is None else f"; boundary={boundary}")
    return b"".join(parts) + end, content_type


SESSION_BODIES = st.one_of(
    st.builds(lambda v: json.dumps({"token": v}).encode(), JSON_VALUES),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=100),
    st.integers(500, 120_000).map(lambda n: ("[" * n + "]" * n).encode()),
)
SESSION_TYPES = st.sampled_from(("application/json", "application/json; charset=bogus", "application/json; charset=utf-16",
                                 "text/plain", None))


# ---------------------------------------------------------------- the fuzz tests

@FUZZ
@given(body=CTT_BODIES, content_type=TEXT_TYPES, params=OPTIONS)
def test_fuzz_ctt_text_submissions(served: Served, body: bytes, content_type: str | None, params: dict[str, str]) -> None:
    answered_well(served, served.post("/api/jobs", body, content_type, params=params))


@FUZZ
@given(body=json_bodies(), content_type=JSON_TYPES)
def test_fuzz_json_submissions(served: Served, body: bytes, content_type: str) -> None:
    answered_well(served, served.post("/api/jobs", body, content_type))


@FUZZ
@given(body_and_type=multipart_bodies())
def test_fuzz_multipart_submissions(served: Served, body_and_type: tuple[bytes, str]) -> None:
    body, content_type = body_and_type
    answered_well(served, served.post("/api/jobs", body, content_type))


@FUZZ
@given(body=SESSION_BODIES, content_type=SESSION_TYPES)
def test_fuzz_login(served: Served, body: bytes, content_type: str | None) -> None:
    answered_well(served, served.post("/api/session", body, content_type, auth=False))


def test_after_the_fuzzing_a_good_job_is_solved_and_nothing_was_logged_as_a_crash(served: Served) -> None:
    httpx.delete(f"{served.url}/api/jobs/{served.blocker}", headers=AUTH, timeout=30)
    resp = served.post("/api/jobs", TOY_CTT.encode(), "text/plain", params={"time_limit": "1"})
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    # The event stream ends with `done`: no polling, no sleeping.
    done, event = None, ""
    with httpx.stream("GET", f"{served.url}/api/jobs/{job_id}/events", headers=AUTH, timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif event == "done" and line.startswith("data: "):
                done = json.loads(line[len("data: "):])
                break
    assert done is not None and done["status"] == "completed" and done["feasible"] is True, done
    log = served.log.read_text(errors="replace")
    assert "Traceback" not in log and "unexpected error" not in log, log[-3000:]
