"""The subscribers `bench/fanout.py` opens: N raw SSE connections from one process.

Plain non-blocking sockets on one epoll (no asyncio, no HTTP library), so that the
client costs as little as a client can. A read's receive time is when epoll reported its
socket readable (the bytes were there by then), not when the loop got round to it, so
the client's own work on the sockets before it is not counted as latency. Once a
subscriber is connected its reads are only kept, with that time, and parsed after the
run: the event's id per block, the JSON once per event (for its `updated_at`), not once
per subscriber. It keeps at most `--batch` connects in flight, starts the replays with
`POST /api/bench/start` once all are connected, reads until every subscriber has its `done`
(or `--timeout`), and prints two JSON lines on stdout: one when all are connected (just
before the start), one with the summary at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import resource
import select
import socket
import time
from dataclasses import dataclass, field

# An event with an id (progress or snapshot), or `done`, which has none.
EVENT = re.compile(rb"(?:id: (\d+)\nevent: (progress|snapshot)|event: (done))\n")
UPDATED_AT = re.compile(rb'"updated_at": ?([0-9.eE+-]+)')


@dataclass(slots=True, eq=False)  # hashed by identity: kept in a set while connecting
class Subscriber:
    job: str
    sock: socket.socket
    opened: float
    connected: float | None = None
    done: bool = False
    events: int = 0
    tail: bytes = b""  # a partial block, for the next read
    reads: list[tuple[float, bytes]] = field(default_factory=list)  # (epoll time, bytes), parsed after the run
    end: bytes = b""  # the last few bytes read, to find a `done` split between two reads


@dataclass
class Tally:
    """What all subscribers received, as the summary needs it."""

    received: dict[tuple[str, int], list[float]] = field(default_factory=dict)  # (job, seq) -> receive times
    updated_at: dict[tuple[str, int], float] = field(default_factory=dict)


def request(path: str, port: int, token: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n").encode()


def feed(sub: Subscriber, data: bytes, now: float, tally: Tally) -> None:
    """Note every complete event in `data`; keep a partial block for the next read."""
    buf = sub.tail + data if sub.tail else data
    end = buf.rfind(b"\n\n")
    if end < 0:
        sub.tail = buf
        return
    end += 2
    sub.tail = buf[end:]
    if sub.connected is None and b"event: connected" in buf:
        sub.connected = now
    for match in EVENT.finditer(buf, 0, end):
        if match[3]:
            sub.done = True
            continue
        key = (sub.job, int(match[1]))
        times = tally.received.get(key)
        if times is None:
            tally.received[key] = times = []
            found = UPDATED_AT.search(buf, match.end())
            if found:
                tally.updated_at[key] = float(found[1])
        times.append(now)
        sub.events += 1


DONE = b"event: done\n"


def keep(sub: Subscriber, data: bytes, polled: float) -> None:
    """Keep a live read for `parse`; note `done` at once, as it ends the subscriber."""
    sub.reads.append((polled, data))
    if DONE in sub.end + data:
        sub.done = True
    sub.end = data[-len(DONE):]


def parse(subs: list[Subscriber], tally: Tally) -> None:
    """Every kept read, in order, as `feed` would have seen it live."""
    for sub in subs:
        for polled, data in sub.reads:
            feed(sub, data, polled, tally)
        sub.reads = []


def start_replays(port: int, token: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/bench/start", headers={"Authorization": f"Bearer {token}"})
    answer = conn.getresponse()
    answer.read()
    if answer.status != 200:
        raise SystemExit(f"POST /bench/start answered {answer.status}")
    conn.close()


def run(args: argparse.Namespace) -> dict[str, object]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    jobs = args.jobs.split(",")
    plan = [job for job in jobs for _ in range(args.per_job)]
    poller = select.epoll()
    by_fd: dict[int, Subscriber] = {}
    tally = Tally()
    subs: list[Subscriber] = []
    refused = lost = 0
    connecting: set[Subscriber] = set()
    buffer = bytearray(65536)  # one receive buffer for every socket: no allocation per read
    view = memoryview(buffer)
    t0 = time.time()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    connected_at = started_at = None
    cpu_live0 = cpu0
    deadline = t0 + args.timeout
    while time.time() < deadline:
        while plan and len(connecting) < args.batch:
            job = plan.pop()
            sock = socket.create_connection(("127.0.0.1", args.port))
            sock.sendall(request(args.path.format(id=job), args.port, args.token))
            sock.setblocking(False)
            sub = Subscriber(job, sock, time.time())
            subs.append(sub)
            connecting.add(sub)
            by_fd[sock.fileno()] = sub
            poller.register(sock.fileno(), select.EPOLLIN)
        if started_at is None and not plan and not connecting:
            connected_at = time.time()
            cpu_live0 = resource.getrusage(resource.RUSAGE_SELF)
            print(json.dumps({"connected": sum(s.connected is not None for s in subs)}), flush=True)
            start_replays(args.port, args.token)
            started_at = time.time()
        if not by_fd and not plan:
            break
        ready = poller.poll(1.0)
        polled = time.time()
        for fd, _ in ready:
            sub = by_fd[fd]
            try:
                n = sub.sock.recv_into(buffer)
            except ConnectionError:
                n = 0
            if n and sub.connected is not None:
                keep(sub, bytes(view[:n]), polled)
            elif n:
                feed(sub, bytes(view[:n]), polled, tally)
                if sub.connected is not None:
                    connecting.discard(sub)
            if not n or sub.done:
                if not n and not sub.done:
                    lost += 1
                    refused += sub.connected is None
                connecting.discard(sub)
                poller.unregister(fd)
                del by_fd[fd]
                sub.sock.close()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    parse(subs, tally)
    connect_times = sorted(s.connected - s.opened for s in subs if s.connected is not None)
    latencies: list[float] = []
    spreads: list[float] = []
    firsts: list[float] = []  # publish to the first receiver: what the path before the fan-out costs
    for key, times in tally.received.items():
        at = tally.updated_at.get(key)
        if at is None or connected_at is None or at < connected_at:
            continue  # published before the replays began: not a live event
        latencies.extend(t - at for t in times)
        spreads.append(max(times) - min(times))
        firsts.append(min(times) - at)
    return {
        "subscribers": len(subs), "connected": len(connect_times), "refused": refused, "lost": lost,
        "done": sum(s.done for s in subs),
        "connect_wall": (connected_at - t0) if connected_at else None,
        "connect_times": connect_times,
        "latencies": sorted(latencies), "spreads": sorted(spreads), "firsts": sorted(firsts),
        "delivered": len(latencies),
        "cpu_connect": _cpu(cpu_live0) - _cpu(cpu0),
        "cpu_live": _cpu(cpu1) - _cpu(cpu_live0),
        "live_wall": time.time() - started_at if started_at else None,
    }


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--jobs", required=True, help="comma-separated job ids")
    parser.add_argument("--per-job", type=int, required=True, help="subscribers per job")
    parser.add_argument("--path", default="/api/jobs/{id}/events", help="the stream's path; {id} is the job id")
    parser.add_argument("--batch", type=int, default=200, help="connects in flight at once")
    parser.add_argument("--timeout", type=float, default=300.0)
    print(json.dumps(run(parser.parse_args())))


if __name__ == "__main__":
    main()
