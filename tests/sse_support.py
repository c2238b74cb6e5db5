"""Shared by the SSE tests: an event factory, a small app serving only the stream,
and a raw HTTP/1.1 reader that checks the wire byte by byte."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import httpx
from aiohttp import web
from aiohttp.test_utils import TestServer
from httpx_sse import aconnect_sse

from app.config import Config
from app.security.auth import Auth, User, auth_middleware
from app.service import JobService
from app.storage.sqlite_store import SqliteStore
from app.storage.store import JobRecord
from app.web.application import error_middleware
from app.web.events import close_streams, stream
from app.web.hub import Hub
from app.web.keys import AUTH, CONFIG, HUB, STORE
from saga.events import QUEUED, RUNNING, TERMINAL, ProgressEvent

ALICE, BOB = "token-alice-0123456", "token-bob-01234567"  # 16+ characters, as the service requires
WAIT = 10.0  # seconds any single expectation may take before the test fails


# What a terminal event says of an incomplete timetable; `done` repeats it.
VERDICT = {"feasible": False, "unplaced": 2, "hard_violations": 3}


def progress_event(job_id: str, seq: int, status: str = RUNNING) -> ProgressEvent:
    """A plausible event of `job_id`; overall progress grows with seq."""
    return ProgressEvent(
        job_id=job_id,
        seq=seq,
        status=status,
        stage=None if status != RUNNING else "cpsat_solving",
        stage_progress=0.0,
        overall_progress=100.0 if status != RUNNING else min(99.0, seq / 10),
        eta_seconds=None,
        started_at=1_700_000_000.0,
        updated_at=1_700_000_000.0 + seq,
        message=f"step {seq}",
        **(VERDICT if status in TERMINAL else {}),
    )


def events_app(store: SqliteStore, hub: Hub, heartbeat: float) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware])
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


async def collect_httpx(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], connected: asyncio.Event
) -> list[tuple[str, str, str]]:
    """(event, id, data) of every event until the server ends the stream; the retry
    hint as ("retry", ms, ""). httpx-sse reports a retry block, and a heartbeat once an
    id has been seen, as a data-less "message" (a browser dispatches neither)."""
    got = []
    async with aconnect_sse(client, "GET", url, headers=headers) as source:
        assert source.response.status_code == 200
        async for sse in source.aiter_sse():
            if sse.retry is not None:
                got.append(("retry", str(sse.retry), ""))
            elif sse.event != "message" or sse.data:
                got.append((sse.event, sse.id, sse.data))
            if sse.event == "connected":
                connected.set()
    return got
