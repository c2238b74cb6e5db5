"""GET /api/jobs/{id}/events over real sockets, read by three independent clients:
a raw HTTP/1.1 socket reader, httpx-sse, and aiohttp's client."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import aiohttp
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from httpx_sse import aconnect_sse

from app.auth import Auth, User, auth_middleware
from app.config import Config
from app.hub import Hub
from app.keys import AUTH, CONFIG, HUB, STORE
from app.metrics import Metrics
from app.service import JobService
from app.sqlite_store import SqliteStore
from app.store import JobRecord
from app.web_errors import ApiError
from app.web_events import close_streams, stream
from saga.events import CANCELLED, COMPLETED, QUEUED, RUNNING, ProgressEvent
from tests.test_hub import progress_event

ALICE, BOB = "token-alice", "token-bob"
WAIT = 10.0  # seconds any single expectation may take before the test fails


@web.middleware
async def api_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return err.response()


def events_app(store: SqliteStore, hub: Hub, heartbeat: float) -> web.Application:
    app = web.Application(middlewares=[api_errors, auth_middleware])
    app[STORE], app[HUB], app[CONFIG] = store, hub, Config(heartbeat=heartbeat)
    app[AUTH] = Auth({ALICE: User("alice"), BOB: User("bob")}, secret=b"s" * 32)
    app.router.add_get("/api/jobs/{id}/events", stream)
    app.on_shutdown.append(close_streams)
    return app


@dataclass
class Env:
    server: TestServer
    store: SqliteStore
    hub: Hub
    service: JobService

    async def new_job(self, job_id: str, owner: str = "alice") -> str:
        await self.store.create_job(JobRecord(job_id, owner, job_id, QUEUED, time.time(), 5.0, 0, 1, "", 0))
        return job_id

    async def emit(self, job_id: str, seq: int, status: str = RUNNING, message: str = "") -> ProgressEvent:
        """Publish as the runner's EventSink does: store first, then the hub."""
        event = progress_event(job_id, seq, status)
        if message:
            event = ProgressEvent.from_dict({**event.to_dict(), "message": message})
        await self.service.publish(event)
        return event

    def url(self, job_id: str) -> str:
        return str(self.server.make_url(f"/api/jobs/{job_id}/events"))


MakeEnv = Callable[..., Awaitable[Env]]


@pytest.fixture
async def make_env(tmp_path: Path) -> AsyncIterator[MakeEnv]:
    made: list[Env] = []

    async def make(heartbeat: float = 0.2, keep_events: int = 1000, **hub_limits: float) -> Env:
        store = SqliteStore(tmp_path / f"db{len(made)}.sqlite", keep_events=keep_events)
        await store.connect()
        hub = Hub(**hub_limits)  # type: ignore[arg-type]
        server = TestServer(events_app(store, hub, heartbeat))
        await server.start_server()
        made.append(Env(server, store, hub, JobService(store, hub, Metrics(hub.stats))))
        return made[-1]

    yield make
    for env in made:
        await env.server.close()
        await env.store.close()


# ---------------------------------------------------------------- raw socket reader


@dataclass(frozen=True)
class Block:
    """One parsed SSE block as bytes arrived: comment, retry, or an event."""

    comment: str | None = None
    retry: int | None = None
    event: str | None = None
    id: str | None = None
    data: str | None = None


def parse_block(text: str) -> Block:
    fields: dict[str, list[str]] = {}
    for line in text.split("\n"):
        name, _, value = line.partition(":")
        fields.setdefault(name or "comment", []).append(value[1:] if value.startswith(" ") else value)
    if "comment" in fields:
        assert len(fields) == 1, f"a comment shared a block with an event: {text!r}"
        return Block(comment="\n".join(fields["comment"]))
    one = {k: v[-1] for k, v in fields.items() if k != "data"}
    return Block(
        retry=int(one["retry"]) if "retry" in one else None,
        event=one.get("event"),
        id=one.get("id"),
        data="\n".join(fields["data"]) if "data" in fields else None,
    )


class RawStream:
    """HTTP/1.1 by hand: checks that every chunk (one server write) holds whole blocks."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self._pending: list[Block] = []
        self.ended = False

    @classmethod
    async def open(
        cls, env: Env, job_id: str, token: str = ALICE, extra: str = "", query: str = "", rcvbuf: int | None = None
    ) -> RawStream:
        sock = socket.socket()
        if rcvbuf is not None:  # set before connecting so the window stays small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", env.server.port))
        raw = cls(*await asyncio.open_connection(sock=sock))
        raw.writer.write(
            f"GET /api/jobs/{job_id}/events{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
            f"Accept-Encoding: gzip, deflate\r\nAuthorization: Bearer {token}\r\n{extra}\r\n".encode()
        )
        return raw

    async def read_head(self) -> None:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}

    async def _chunk(self) -> bytes:
        size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
        data = await self.reader.readexactly(size + 2)
        return data[:-2]

    async def next(self) -> Block | None:
        """The next block, or None once the response has ended."""
        while not self._pending and not self.ended:
            chunk = await asyncio.wait_for(self._chunk(), WAIT)
            if not chunk:
                self.ended = True
                break
            text = chunk.decode("utf-8")
            assert text.endswith("\n\n"), f"a write ended inside a block: {text!r}"
            self._pending = [parse_block(b) for b in text[:-2].split("\n\n")]
        return self._pending.pop(0) if self._pending else None

    async def until(self, accept: Callable[[Block], bool]) -> list[Block]:
        """Blocks read up to and including the first accepted one."""
        seen: list[Block] = []
        while True:
            block = await self.next()
            assert block is not None, f"stream ended before the expected block; saw {seen}"
            seen.append(block)
            if accept(block):
                return seen

    def close(self) -> None:
        self.writer.close()


def named(name: str) -> Callable[[Block], bool]:
    return lambda block: block.event == name


def is_ping(block: Block) -> bool:
    return block.comment == "ping"


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------- tests


async def test_raw_wire_headers_retry_ids_heartbeats_done(make_env: MakeEnv) -> None:
    env = await make_env()
    job = await env.new_job("j1")
    raw = await RawStream.open(env, job)
    await raw.read_head()
    assert raw.status == 200
    assert raw.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert raw.headers["cache-control"] == "no-store"
    assert raw.headers["x-accel-buffering"] == "no"
    assert "content-encoding" not in raw.headers, "the stream must never be compressed"
    first, connected = await raw.next(), await raw.next()
    assert first == Block(retry=3000)
    assert connected == Block(event="connected", data=json.dumps({"job_id": job}, separators=(",", ":")))

    sent = []
    for seq in (1, 2, 3):
        sent.append(await env.emit(job, seq, message=f"line one\nline two of {seq}"))
        got = await raw.until(named("progress"))
        assert all(is_ping(b) for b in got[:-1])
        assert got[-1].id == str(seq)
        assert ProgressEvent.from_dict(json.loads(got[-1].data or "")) == sent[-1]
        await raw.until(is_ping)  # idle: heartbeats flow between events
    final = await env.emit(job, 4, COMPLETED)
    tail = await raw.until(named("done"))
    assert [b.id for b in tail if b.event == "progress"] == ["4"]
    assert json.loads(tail[-1].data or "") == {"status": final.status, "links": {
        "self": f"/api/jobs/{job}", "events": f"/api/jobs/{job}/events", "timetable": f"/api/jobs/{job}/timetable"}}
    assert await raw.next() is None, "the server ends the stream after done"
    raw.close()


async def _collect_httpx(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], connected: asyncio.Event
) -> list[tuple[str, str, str]]:
    """(event, id, data) of every event until the server ends the stream; a retry
    hint, which httpx-sse reports as a data-less message, as ("retry", ms, "")."""
    got = []
    async with aconnect_sse(client, "GET", url, headers=headers) as source:
        assert source.response.status_code == 200
        async for sse in source.aiter_sse():
            retry_only = sse.retry is not None and not sse.data
            got.append(("retry", str(sse.retry), "") if retry_only else (sse.event, sse.id, sse.data))
            if sse.event == "connected":
                connected.set()
    return got


async def test_resume_with_last_event_id_gets_exactly_the_missed_events(make_env: MakeEnv) -> None:
    env = await make_env()
    job = await env.new_job("j2")
    for seq in range(1, 11):
        await env.emit(job, seq)
    headers = {"Authorization": f"Bearer {ALICE}", "Last-Event-ID": "4"}
    async with httpx.AsyncClient(timeout=WAIT) as client:
        connected = asyncio.Event()
        reader = asyncio.create_task(_collect_httpx(client, env.url(job), headers, connected))
        await asyncio.wait_for(connected.wait(), WAIT)
        await env.emit(job, 11)
        await env.emit(job, 12, COMPLETED)
        got = await asyncio.wait_for(reader, WAIT)
    assert [e for e, _, _ in got[:2]] == ["retry", "connected"]
    assert [(e, i) for e, i, _ in got[2:]] == [("progress", str(s)) for s in range(5, 13)] + [("done", "12")]


async def test_seam_between_replay_and_live_has_no_gap_and_no_duplicate(make_env: MakeEnv) -> None:
    env = await make_env(queue_size=10_000)
    job = await env.new_job("j3")
    last, published = 300, 0

    async def produce() -> None:
        nonlocal published
        for seq in range(1, last + 1):
            await env.emit(job, seq, COMPLETED if seq == last else RUNNING)
            published = seq

    async def consume(after: int, session: aiohttp.ClientSession) -> list[int]:
        ids = []
        headers = {"Authorization": f"Bearer {ALICE}", "Last-Event-ID": str(after)}
        async with session.get(env.url(job), headers=headers) as resp:
            async for line in resp.content:
                if line.startswith(b"id: "):
                    ids.append(int(line[4:]))
        return ids

    async with aiohttp.ClientSession() as session:
        producer = asyncio.create_task(produce())
        readers = []
        for after in range(0, 250, 25):  # connect while the producer runs, resuming at varied points
            await eventually(lambda: published >= after, f"event {after}")
            readers.append((after, asyncio.create_task(consume(after, session))))
        await asyncio.wait_for(producer, WAIT)
        for after, reader in readers:
            ids = await asyncio.wait_for(reader, WAIT)
            assert ids == list(range(after + 1, last + 1)), f"resumed after {after}"
    assert env.hub.stats.events_coalesced == 0


async def test_query_parameter_resumes_a_first_connect_and_garbage_means_from_start(make_env: MakeEnv) -> None:
    env = await make_env()
    job = await env.new_job("j4")
    for seq in range(1, 4):
        await env.emit(job, seq)
    await env.emit(job, 4, CANCELLED)
    for query, expected in (("?last_event_id=2", ["3", "4"]), ("?last_event_id=abc", ["1", "2", "3", "4"])):
        raw = await RawStream.open(env, job, query=query)
        await raw.read_head()
        blocks = await raw.until(named("done"))
        assert [b.id for b in blocks if b.event == "progress"] == expected
        assert await raw.next() is None
        raw.close()


async def test_trimmed_log_starts_with_a_snapshot(make_env: MakeEnv) -> None:
    env = await make_env(keep_events=5)
    job = await env.new_job("j5")
    for seq in range(1, 21):
        latest = await env.emit(job, seq)
    raw = await RawStream.open(env, job, extra="Last-Event-ID: 3\r\n")
    await raw.read_head()
    blocks = await raw.until(lambda b: b.event not in (None, "connected"))
    assert (blocks[-1].event, blocks[-1].id) == ("snapshot", "20")
    assert ProgressEvent.from_dict(json.loads(blocks[-1].data or "")) == latest
    await env.emit(job, 21, COMPLETED)
    assert [b.id for b in await raw.until(named("done")) if b.event] == ["21", None]
    raw.close()


async def test_late_subscriber_gets_final_state_and_done_at_once(make_env: MakeEnv) -> None:
    env = await make_env(heartbeat=30.0)  # a heartbeat-long wait would time the test out
    job = await env.new_job("j6")
    await env.emit(job, 1)
    final = await env.emit(job, 2, COMPLETED)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ALICE}"}) as session:
        async with session.get(env.url(job)) as resp:
            body = (await asyncio.wait_for(resp.read(), WAIT)).decode()
        assert body.startswith("retry: 3000\n")
        assert f"id: 2\nevent: progress\ndata: {json.dumps(final.to_dict(), separators=(',', ':'))}\n" in body
        assert body.endswith('event: done\ndata: {"status":"completed","links":{"self":"/api/jobs/j6",'
                             '"events":"/api/jobs/j6/events","timetable":"/api/jobs/j6/timetable"}}\n\n')
        # A client that already saw the end (EventSource reconnecting) is told done again, nothing else.
        async with session.get(env.url(job), headers={"Last-Event-ID": "2"}) as resp:
            body = (await asyncio.wait_for(resp.read(), WAIT)).decode()
        assert "event: progress" not in body and body.count("event: done") == 1


async def test_unknown_and_foreign_jobs_are_404_json(make_env: MakeEnv) -> None:
    env = await make_env()
    job = await env.new_job("j7", owner="alice")
    async with aiohttp.ClientSession() as session:
        for job_id, token in (("nope", ALICE), (job, BOB)):
            async with session.get(env.url(job_id), headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 404
                assert (await resp.json())["error"] == "not_found"
    assert env.hub.subscriber_count == 0


async def test_hundred_concurrent_subscribers_see_identical_sequences(make_env: MakeEnv) -> None:
    env = await make_env(max_subscribers=200)
    job = await env.new_job("j8")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ALICE}"}) as session:

        async def read_all() -> bytes:
            async with session.get(env.url(job)) as resp:
                return await resp.read()

        readers = [asyncio.create_task(read_all()) for _ in range(100)]
        await eventually(lambda: env.hub.subscriber_count == 100, "100 subscribers")
        for seq in range(1, 31):
            await env.emit(job, seq, COMPLETED if seq == 30 else RUNNING)
        bodies = [b.replace(b": ping\n\n", b"") for b in await asyncio.wait_for(asyncio.gather(*readers), WAIT)]
    assert len(set(bodies)) == 1
    assert bodies[0].count(b"event: progress") == 30 and bodies[0].endswith(b"\n\n")
    assert env.hub.stats.events_coalesced == 0


async def test_a_reader_that_never_reads_delays_nobody_and_is_dropped(make_env: MakeEnv) -> None:
    env = await make_env(queue_size=8, write_timeout=1.0)
    job = await env.new_job("j9")
    stalled = await RawStream.open(env, job, rcvbuf=4096)  # connects, then never reads
    await eventually(lambda: env.hub.subscriber_count == 1, "the stalled subscriber")
    headers = {"Authorization": f"Bearer {ALICE}"}
    async with httpx.AsyncClient(timeout=WAIT) as client:
        connected = asyncio.Event()
        reader = asyncio.create_task(_collect_httpx(client, env.url(job), headers, connected))
        await asyncio.wait_for(connected.wait(), WAIT)
        big = "x" * 16_384  # fills the stalled socket's buffers quickly
        for seq in range(1, 400):
            await env.emit(job, seq, message=big)
        await env.emit(job, 400, COMPLETED)
        got = await asyncio.wait_for(reader, WAIT)
    assert [i for e, i, _ in got if e == "progress"] == [str(s) for s in range(1, 401)]
    assert env.hub.stats.events_coalesced > 0, "the stalled reader's backlog was coalesced"
    await eventually(lambda: env.hub.stats.subscribers_dropped == 1, "the stalled reader to be dropped")
    await eventually(lambda: env.hub.subscriber_count == 0, "all subscriptions to close")
    stalled.close()


async def _connect_and_leave(env: Env, job: str) -> None:
    raw = await RawStream.open(env, job)
    await raw.read_head()
    await raw.until(named("connected"))
    raw.close()
    await raw.writer.wait_closed()


async def test_500_connect_disconnect_cycles_leave_nothing_behind(make_env: MakeEnv) -> None:
    env = await make_env(heartbeat=0.05)
    job = await env.new_job("j10")
    idle = lambda: env.hub.subscriber_count == 0 and env.hub.stats.open_connections == 0  # noqa: E731
    for _ in range(50):  # warm-up: caches and free lists
        await _connect_and_leave(env, job)
    await eventually(idle, "warm-up streams to close")
    tasks_before = len(asyncio.all_tasks())
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.take_snapshot()
        for _ in range(450):
            await _connect_and_leave(env, job)
        await eventually(idle, "every stream to notice its client left")
        await eventually(lambda: len(asyncio.all_tasks()) <= tasks_before, "handler tasks to end")
        gc.collect()
        growth = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(start, "filename"))
    finally:
        tracemalloc.stop()
    assert growth < 256 * 1024, f"memory grew by {growth} bytes over 450 cycles"


async def test_shutdown_ends_twenty_open_streams_at_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    await store.connect()
    hub = Hub()
    await store.create_job(JobRecord("j11", "alice", "j11", RUNNING, time.time(), 5.0, 0, 1, "", 0))
    runner = web.AppRunner(events_app(store, hub, heartbeat=30.0))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ALICE}"}) as session:

        async def read_all() -> bytes:
            async with session.get(f"http://127.0.0.1:{port}/api/jobs/j11/events") as resp:
                return await resp.read()

        readers = [asyncio.create_task(read_all()) for _ in range(20)]
        await eventually(lambda: hub.subscriber_count == 20, "20 open streams")
        await asyncio.wait_for(runner.cleanup(), 5.0)  # aiohttp alone would wait up to 60 s
        bodies = await asyncio.wait_for(asyncio.gather(*readers), 5.0)
    assert all(b.startswith(b"retry: 3000\n") and b"event: connected" in b for b in bodies)
    await store.close()


async def test_store_outage_answers_200_and_asks_to_retry(make_env: MakeEnv) -> None:
    env = await make_env()
    job = await env.new_job("j12")
    await env.store.close()
    raw = await RawStream.open(env, job)
    await raw.read_head()
    assert raw.status == 200
    assert await raw.next() == Block(retry=3000)
    assert await raw.next() is None
    raw.close()


async def test_overload_answers_200_and_asks_to_retry(make_env: MakeEnv) -> None:
    env = await make_env(max_subscribers=1)
    job = await env.new_job("j13")
    first = await RawStream.open(env, job)
    await first.read_head()
    await first.until(named("connected"))
    second = await RawStream.open(env, job)
    await second.read_head()
    assert second.status == 200
    assert [await second.next(), await second.next()] == [Block(retry=3000), None]
    assert env.hub.stats.subscribers_refused == 1
    first.close()
    second.close()
