"""GET /api/jobs/{id}/events over real sockets, read by three independent clients:
a raw HTTP/1.1 socket reader, httpx-sse, and aiohttp's client."""


from __future__ import annotations

import asyncio
import gc
import json
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app.config import Config
from app.service import JobService
from app.storage.sqlite_store import SqliteStore
from app.storage.store import JobRecord
from app.web.application import create_app
from app.web.connections import GuardedConnection, guard_of
from app.web.hub import Hub
from app.web.metrics import Metrics
from saga.events import CANCELLED, COMPLETED, RUNNING, ProgressEvent
from solver.ctt import format_ctt
from solver.generate import generate
from tests.sse_support import (
    ALICE, BOB, VERDICT, WAIT, Block, Env, MakeEnv, RawStream, collect_httpx, events_app, eventually, is_ping, named,
)


@pytest.fixture
async def make_env(tmp_path: Path) -> AsyncIterator[MakeEnv]:
    made: list[Env] = []

    async def make(heartbeat: float = 0.2, keep_events: int = 1000, **hub_limits: float) -> Env:
        store = SqliteStore(tmp_path / f"db{len(made)}.sqlite", keep_events=keep_events)
        await store.connect()
        hub = Hub(heartbeat=heartbeat, **hub_limits)  # type: ignore[arg-type]
        server = TestServer(events_app(store, hub, heartbeat))
        await server.start_server()
        made.append(Env(server, store, hub, JobService(store, hub, Metrics(hub.stats))))
        return made[-1]

    yield make
    for env in made:
        await env.server.close()
        await env.store.close()


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
    assert json.loads(tail[-1].data or "") == {"status": final.status, **VERDICT, "links": {
        "self": f"/api/jobs/{job}", "events": f"/api/jobs/{job}/events", "timetable": f"/api/jobs/{job}/timetable"}}
    assert await raw.next() is None, "the server ends the stream after done"
    raw.close()


async def test_resume_with_last_event_id_gets_exactly_the_missed_events(make_env: MakeEnv) -> None:
    env = await make_env()
    job = await env.new_job("j2")
    for seq in range(1, 11):
        await env.emit(job, seq)
    headers = {"Authorization": f"Bearer {ALICE}", "Last-Event-ID": "4"}
    async with httpx.AsyncClient(timeout=WAIT) as client:
        connected = asyncio.Event()
        reader = asyncio.create_task(collect_httpx(client, env.url(job), headers, connected))
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


async def test_a_stream_that_connects_while_an_event_is_being_stored_gets_it_once(make_env: MakeEnv) -> None:
    """The producer publishes to the hub before the store write lands: a stream whose replay
    reads the log in between gets the event from the hub, neither lost nor twice."""
    env = await make_env()
    job = await env.new_job("j9")
    await env.emit(job, 1)
    gate = asyncio.Event()
    append = env.store.append_event

    async def slow_append(event: ProgressEvent) -> None:
        if event.seq == 2:
            await gate.wait()  # the store is still writing event 2
        await append(event)

    env.store.append_event = slow_append  # type: ignore[method-assign]
    emitting = asyncio.create_task(env.emit(job, 2))
    await eventually(lambda: env.hub.stats.events_published == 2, "event 2 published")
    raw = await RawStream.open(env, job)
    await raw.read_head()
    await raw.until(lambda b: b.id == "1")
    gate.set()
    await asyncio.wait_for(emitting, WAIT)
    await env.emit(job, 3, COMPLETED)
    blocks = await raw.until(named("done"))
    assert [b.id for b in blocks if b.event == "progress"] == ["2", "3"]
    raw.close()


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
        done = ('event: done\ndata: {"status":"completed","feasible":false,"unplaced":2,"hard_violations":3,'
                '"links":{"self":"/api/jobs/j6","events":"/api/jobs/j6/events","timetable":"/api/jobs/j6/timetable"}}\n\n')
        assert body.endswith(done)
        # A client that already saw the end (EventSource reconnecting) is told done again, nothing else.
        async with session.get(env.url(job), headers={"Last-Event-ID": "2"}) as resp:
            body = (await asyncio.wait_for(resp.read(), WAIT)).decode()
        assert "event: progress" not in body and body.count("event: done") == 1 and body.endswith(done)


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
    env = await make_env(max_subscribers=200, deliveries_per_second=1e9)  # no pacing: every event goes out
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
        reader = asyncio.create_task(collect_httpx(client, env.url(job), headers, connected))
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


async def test_a_live_stream_leaves_aiohttp_and_ends_its_own_body(make_env: MakeEnv) -> None:
    # An open stream may last hours: once live, aiohttp keeps nothing for it (its request,
    # parser and tasks: most of a stream's memory); the subscription writes and ends the body.
    env = await make_env()
    job = await env.new_job("j1")
    raw = await RawStream.open(env, job)
    await raw.read_head()
    await raw.until(named("connected"))
    handlers = env.server.runner.server
    assert handlers is not None
    await eventually(lambda: not handlers.connections, "aiohttp to let go of the live stream")
    assert env.hub.subscriber_count == 1 and env.hub.stats.open_connections == 1
    await env.emit(job, 1)
    assert (await raw.until(named("progress")))[-1].id == "1"
    await env.emit(job, 2, COMPLETED)
    await raw.until(named("done"))
    assert await raw.next() is None, "the body's last chunk ends the response"
    assert await asyncio.wait_for(raw.reader.read(), WAIT) == b"", "then the server closes the connection"
    await eventually(lambda: env.hub.stats.open_connections == 0, "the stream to count as closed")


async def test_a_handed_over_stream_keeps_and_then_frees_its_place_under_the_connection_caps(tmp_path: Path) -> None:
    # Served as `timetabler serve` does, through the connection guard: a live stream still
    # counts as an open connection, and its place is given back once, when it ends.
    store = SqliteStore(tmp_path / "db.sqlite")
    await store.connect()
    hub = Hub(heartbeat=0.2)
    runner = web.AppRunner(events_app(store, hub, 0.2))
    await runner.setup()
    assert runner.server is not None
    guard = guard_of(0, 0)
    handlers = runner.server
    server = await asyncio.get_running_loop().create_server(
        lambda: GuardedConnection(guard, handlers), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = Env(_Served(port), store, hub, JobService(store, hub, Metrics(hub.stats)))  # type: ignore[arg-type]
    try:
        job = await env.new_job("j1")
        streams = [await RawStream.open(env, job) for _ in range(3)]
        for raw in streams:
            await raw.read_head()
            await raw.until(named("connected"))
        await eventually(lambda: not handlers.connections, "aiohttp to let go of the live streams")
        assert guard.stats.open == 3
        streams[0].close()
        await eventually(lambda: guard.stats.open == 2 and hub.subscriber_count == 2, "a stream whose client left to end")
        await env.emit(job, 1, COMPLETED)
        for raw in streams[1:]:
            await raw.until(named("done"))
            assert await raw.next() is None
        await eventually(lambda: guard.stats.open == 0 and hub.stats.open_connections == 0, "every place to be free")
    finally:
        server.close()
        await runner.cleanup()
        await store.close()


@dataclass(frozen=True)
class _Served:
    """What RawStream needs of a server: its port."""

    port: int


async def test_10000_connect_disconnect_cycles_leave_nothing_behind(make_env: MakeEnv) -> None:
    env = await make_env(heartbeat=15.0)  # the default: leaving must be noticed long before a ping
    job = await env.new_job("j10")
    idle = lambda: env.hub.subscriber_count == 0 and env.hub.stats.open_connections == 0  # noqa: E731

    async def cycles(n: int, at_once: int = 50) -> None:
        for _ in range(n // at_once):
            await asyncio.gather(*(_connect_and_leave(env, job) for _ in range(at_once)))

    await cycles(500)  # warm-up: caches and free lists
    await eventually(idle, "warm-up streams to close")
    tasks_before = len(asyncio.all_tasks())
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.take_snapshot()
        await cycles(10_000)
        await eventually(idle, "every stream to notice its client left")
        await eventually(lambda: len(asyncio.all_tasks()) <= tasks_before, "handler tasks to end")
        gc.collect()
        growth = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(start, "filename"))
    finally:
        tracemalloc.stop()
    assert env.hub.stats.subscribers_refused == 0
    assert growth < 512 * 1024, f"memory grew by {growth} bytes over 10,000 cycles"


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


async def test_end_to_end_through_create_app_with_a_real_job(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{ALICE} alice\n")
    config = Config(data_dir=tmp_path / "data", tokens=tokens, slots=1, heartbeat=0.5, time_limit=2)
    server = TestServer(create_app(config))
    await server.start_server()
    instance = format_ctt(generate(courses=6, rooms=3, curricula=3, seed=1))
    try:
        headers = {"Authorization": f"Bearer {ALICE}"}
        async with httpx.AsyncClient(base_url=str(server.make_url("/")), headers=headers, timeout=60) as client:
            resp = await client.post("/api/jobs", content=instance, params={"time_limit": "2"},
                                     headers={"Content-Type": "text/plain"})
            assert resp.status_code == 202, resp.text
            links = resp.json()["links"]
            got = await collect_httpx(client, links["events"], {}, asyncio.Event())
            timetable = await client.get(links["timetable"])
            assert timetable.status_code == 200, (timetable.text, got[-3:])
    finally:
        await server.close()
    assert [e for e, _, _ in got[:2]] == ["retry", "connected"]
    progress = [(int(i), json.loads(d)) for e, i, d in got if e == "progress"]
    assert len(progress) >= 10, f"only {len(progress)} progress events"
    assert [seq for seq, _ in progress] == [p["seq"] for _, p in progress]
    assert [seq for seq, _ in progress] == sorted({seq for seq, _ in progress}), "ids strictly increase"
    overall = [p["overall_progress"] for _, p in progress]
    assert overall == sorted(overall) and overall[-1] == 100
    assert progress[-1][1]["status"] == "completed"
    assert progress[-1][1]["feasible"] is True and progress[-1][1]["message"] == "Timetable ready"
    verdict = {"feasible": True, "unplaced": 0, "hard_violations": 0}
    assert got[-1][0] == "done" and json.loads(got[-1][2]) == {"status": "completed", **verdict, "links": links}
