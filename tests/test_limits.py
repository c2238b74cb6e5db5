"""Limits a public service needs (issue 10, items 4 and 7), over real sockets: slow and
oversized request bodies, connections per client address and in total, accept errors
when file descriptors run out (all against real `timetabler serve` processes), and
event streams per user and in total."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer

from app.config import Config
from app.web.application import create_app
from app.web.keys import HUB, SERVICE, STORE
from tests.app_support import BUSY_CTT
from tests.browser_support import free_port
from tests.sse_support import WAIT, Block, Env, RawStream, named

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "limits-test-admin-token-0123456789"
START_TIMEOUT = 30.0


@dataclass
class Served:
    """A `timetabler serve` process and what it logged."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, str]:
        return json.loads(self.body)


def parse_answer(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
    return Answer(int(status_line.split()[1]), headers, body)


async def connect(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection from `source` (any 127.x.y.z is this machine, seen as another client address)."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def request(port: int, path: str, source: str = "127.0.0.1") -> Answer:
    """One GET on its own connection, read to the server's close."""
    reader, writer = await connect(port, source)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    try:
        return parse_answer(await asyncio.wait_for(reader.read(), WAIT))
    finally:
        writer.close()


async def keep_alive_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    """A GET on an open keep-alive connection; its status (the body is read and dropped)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = parse_answer(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT))
    await reader.readexactly(int(head.headers["content-length"]))
    return head.status


async def answers(port: int) -> bool:
    try:
        return (await request(port, "/api/health")).status == 200
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, IndexError, ValueError):
        return False


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        await asyncio.sleep(0.05)


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} missing from /metrics"
    return float(found.group(1))


def raise_own_files_limit(wanted: int) -> None:
    """This test process holds a thousand sockets too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < wanted:
        pytest.skip(f"the open-files limit is {soft} (hard), and this test needs {wanted}")


Serve = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    started: list[Served] = []

    async def start(*flags: str, open_files: int | None = None) -> Served:
        port, log = free_port(), tmp_path / f"serve-{len(started)}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMETABLER_")}
        command = [sys.executable, "-m", "app", "serve", "--port", str(port), "--data-dir",
                   str(tmp_path / f"data-{len(started)}"), "--admin-token", TOKEN, *flags]

        def limit_files() -> None:  # in the child only: soft and hard, so the service cannot lift it
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        with open(log, "wb") as out:
            process = subprocess.Popen(command, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=limit_files)
        started.append(Served(process, port, log))

        async def up() -> bool:
            assert process.poll() is None, f"serve exited with {process.returncode}: {log.read_text()[-2000:]}"
            return await answers(port)

        await until(up, "the service's /api/health", START_TIMEOUT)
        return started[-1]

    yield start
    for served in started:
        if served.process.poll() is None:
            os.killpg(served.process.pid, signal.SIGTERM)
        try:
            served.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(served.process.pid, signal.SIGKILL)
            served.process.wait(timeout=5)


# ---------------------------------------------------------------- item 4: slow requests


STALLED = 1000
BODY_TIMEOUT = 8.0


async def test_a_thousand_stalled_bodies_neither_block_health_nor_outlive_the_body_timeout(serve: Serve) -> None:
    raise_own_files_limit(STALLED + 500)
    served = await serve("--body-timeout", str(BODY_TIMEOUT))
    loop = asyncio.get_running_loop()
    # Headers promise 100 bytes, 10 arrive, then nothing: the slow-request attack of the issue.
    stall = (f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
             "Content-Type: text/plain\r\nContent-Length: 100\r\n\r\nName: Toy\n").encode()

    async def stalled(i: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, float]:
        # From 20 addresses, 50 each: a crowd, each client under the per-address cap.
        reader, writer = await connect(served.port, f"127.0.0.{2 + i % 20}")
        writer.write(stall)
        await writer.drain()
        return reader, writer, loop.time()

    async def held(reader: asyncio.StreamReader, sent: float) -> tuple[bytes, float]:
        """What the server said before closing, and when it closed (seconds after the stall)."""
        said = await asyncio.wait_for(reader.read(), BODY_TIMEOUT + 3 * WAIT)
        return said, loop.time() - sent

    connections = await asyncio.gather(*(stalled(i) for i in range(STALLED)))
    ends = [asyncio.create_task(held(reader, sent)) for reader, _, sent in connections]
    try:
        async def all_taken() -> bool:  # accepted by the service, not waiting in the kernel's queue
            return metric((await request(served.port, "/metrics")).body.decode(), "timetabler_connections_open") >= STALLED

        await until(all_taken, f"the service to hold all {STALLED} stalled connections")
        for _ in range(5):
            started = loop.time()
            health = await asyncio.wait_for(request(served.port, "/api/health"), 1.0)
            assert health.status == 200 and health.json()["status"] == "ok"
            assert loop.time() - started < 1.0
        assert not any(end.done() for end in ends), "health must have answered while every stalled request was held"

        results = await asyncio.gather(*ends)
    finally:
        for _, writer, _ in connections:
            writer.close()
    lasted = sorted(after for _, after in results)
    assert lasted[0] >= BODY_TIMEOUT - 0.5, f"closed before the body timeout: {lasted[0]:.2f} s"
    assert lasted[-1] <= BODY_TIMEOUT + 1.5, f"a stalled connection lasted {lasted[-1]:.2f} s"
    for said, _ in results:
        answer = parse_answer(said)
        assert answer.status == 408 and answer.json()["error"] == "request_timeout", said[:300]
        assert answer.headers["connection"] == "close"
    text = (await request(served.port, "/metrics")).body.decode()
    assert metric(text, "timetabler_request_body_timeouts_total") == STALLED
    assert "Traceback" not in served.log_text()


async def test_an_announced_body_over_max_body_is_refused_before_a_byte_of_it_is_sent(serve: Serve) -> None:
    served = await serve("--max-body", "1000")  # and the default body timeout of 30 s
    reader, writer = await connect(served.port)
    writer.write((f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                  "Content-Type: text/plain\r\nContent-Length: 5000\r\n\r\n").encode())
    try:
        # Answered and closed with nothing of the body sent: the server did not wait for it.
        answer = parse_answer(await asyncio.wait_for(reader.read(), WAIT))
    finally:
        writer.close()
    assert answer.status == 413 and answer.headers["connection"] == "close"
    assert answer.json() == {"error": "payload_too_large", "detail": "The request body is larger than the 1000 bytes limit."}


async def test_connections_are_capped_per_client_address_and_in_total(serve: Serve) -> None:
    served = await serve("--max-connections", "5", "--max-connections-per-client", "3")
    port = served.port
    held = [await connect(port, "127.0.0.2") for _ in range(3)]
    for reader, writer in held:  # each one really taken by the service
        assert await keep_alive_get(reader, writer, "/api/health") == 200

    refused = await request(port, "/api/health", "127.0.0.2")
    assert refused.status == 503 and refused.headers["connection"] == "close"
    assert refused.json()["error"] == "too_many_connections" and "Your address" in refused.json()["detail"]

    for source in ("127.0.0.3", "127.0.0.4"):  # other clients are unaffected, up to the total
        held.append(await connect(port, source))
        assert await keep_alive_get(*held[-1], "/api/health") == 200
    full = await request(port, "/api/health", "127.0.0.5")
    assert full.status == 503 and "limit of 5 connections" in full.json()["detail"]

    held.pop(0)[1].close()  # one leaves: there is room again
    await until(lambda: answers(port), "a connection to be admitted again")
    text = (await request(port, "/metrics", "127.0.0.6")).body.decode()
    assert metric(text, 'timetabler_connections_refused_total{limit="client"}') == 1
    assert metric(text, 'timetabler_connections_refused_total{limit="total"}') >= 1
    for _, writer in held:
        writer.close()


async def test_running_out_of_file_descriptors_logs_one_line_not_a_traceback_per_connection(serve: Serve) -> None:
    # 128 descriptors, with room for 1000 connections: accept() must fail with EMFILE.
    served = await serve("--max-connections", "1000", "--max-connections-per-client", "0", open_files=128)
    assert "open-files limit is 128" in served.log_text()  # said plainly at start
    clients = [await connect(served.port) for _ in range(300)]

    async def logged() -> bool:
        return "cannot accept connections" in served.log_text()

    await until(logged, "the accept error to be logged")
    for _, writer in clients:
        writer.close()
    # The queued connections are accepted on asyncio's retry (1 s later) and the service serves again.
    await until(lambda: answers(served.port), "the service to answer again")
    log = served.log_text()
    assert len(re.findall("Too many open files", log)) == 1, log[-3000:]
    assert "Traceback" not in log and "out of system resource" not in log


# ---------------------------------------------------------------- item 7: event streams


ALICE_T, BOB_T, ROOT_T = "alice-token-0123456789", "bob-token-0123456789", "root-token-0123456789"


async def test_event_streams_are_capped_per_user_and_in_total_and_refusals_are_counted(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{ALICE_T} alice\n{BOB_T} bob\n{ROOT_T} root admin\n")
    config = replace(Config(), data_dir=tmp_path / "data", tokens=tokens, slots=1, max_active_jobs=2,
                     max_streams=2, max_streams_per_user=1)
    app = create_app(config)
    server = TestServer(app)
    await server.start_server()
    env = Env(server, app[STORE], app[HUB], app[SERVICE])
    opened: list[RawStream] = []

    async def open_stream(job: str, token: str) -> RawStream:
        opened.append(await RawStream.open(env, job, token=token))
        await opened[-1].read_head()
        assert opened[-1].status == 200
        return opened[-1]

    async def submit(token: str) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        body = BUSY_CTT.encode()
        writer.write((f"POST /api/jobs?time_limit=60 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                      f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)
        answer = parse_answer(await asyncio.wait_for(reader.read(), WAIT))
        writer.close()
        assert answer.status == 202, answer.body
        return str(answer.json()["id"])

    try:
        alices, bobs = await submit(ALICE_T), await submit(BOB_T)
        await (await open_stream(alices, ALICE_T)).until(named("connected"))
        second = await open_stream(alices, ALICE_T)  # over alice's cap of 1: retry later, then the end
        assert [await second.next(), await second.next()] == [Block(retry=3000), None]
        await (await open_stream(bobs, BOB_T)).until(named("connected"))  # bob is not locked out by alice
        over_total = await open_stream(alices, ROOT_T)  # two streams open in all: the total cap
        assert [await over_total.next(), await over_total.next()] == [Block(retry=3000), None]

        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        text = parse_answer(await asyncio.wait_for(reader.read(), WAIT)).body.decode()
        writer.close()
        assert metric(text, 'timetabler_sse_refused_total{limit="user"}') == 1
        assert metric(text, 'timetabler_sse_refused_total{limit="total"}') == 1

        opened[0].close()  # alice leaves: her next stream is welcome
        async def alice_may_again() -> bool:
            again = await open_stream(alices, ALICE_T)
            assert await again.next() == Block(retry=3000)
            hello = await again.next()  # None while the server has not yet seen her first stream go
            return hello is not None and hello.event == "connected"

        await until(alice_may_again, "alice's stream to be admitted after she closed hers")
    finally:
        for raw in opened:
            raw.close()
        await server.close()
