"""Helpers of the scale-out fault tests (tests/test_scale_out_faults.py): processes seen
through /proc, a deadline poller, and an event-stream reader that reconnects as a browser's
EventSource does (after `retry`, with Last-Event-ID)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import httpx

from tests.scale_out_support import AUTH, Process
from tests.sse_support import WAIT

T = TypeVar("T")
POLL = 0.05  # seconds between looks at something the test waits for
RECONNECT = 0.2  # seconds a reconnecting reader waits, as a browser waits `retry`


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT, explain: Callable[[], str] = str) -> T:
    """`probe()`'s first truthy answer, looked at every POLL s until `timeout`; else fail
    saying `what` (and `explain()`: logs, say)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}\n{explain()}")
        time.sleep(POLL)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, None when it is gone (a zombie counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else (fields[0], int(fields[1]))


def alive(pid: int) -> bool:
    return _stat(pid) is not None


def solver_children(parent: int) -> list[int]:
    """The live solver processes (multiprocessing spawn children, not its resource tracker)
    whose parent is `parent`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        pid = int(stat.parent.name)
        state = _stat(pid)
        if state is None or state[1] != parent:
            continue
        try:
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            found.append(pid)
    return found


def solver_child(worker: Process, explain: Callable[[], str] = str) -> int:
    assert worker.proc is not None
    pid = worker.proc.pid
    children = wait_for(f"a solver child of worker {pid}", lambda: solver_children(pid), explain=explain)
    assert len(children) == 1, children
    return children[0]


class Stream(threading.Thread):
    """Reads a job's event stream on a thread until `done`, reconnecting whenever the
    stream ends or breaks; `events` are the progress / snapshot events received, each with
    the monotonic time it arrived (key `_at`). As a browser's EventSource, it gives up for
    good on an answer other than 200 (`refused` is then its status, and `done` is set)."""

    def __init__(self, web: Process, job_id: str, last_event_id: int | None = None) -> None:
        super().__init__(daemon=True, name=f"stream-{job_id}")
        self.web, self.job_id, self.last = web, job_id, last_event_id
        self.events: list[dict[str, Any]] = []
        self.connects = 0
        self.refused: int | None = None
        self.done = threading.Event()
        self._quit = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> Stream:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._quit.set()
        self.join(WAIT)

    def got(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def seqs(self) -> list[int]:
        return [e["seq"] for e in self.got()]

    def run(self) -> None:
        while not self._quit.is_set() and not self.done.is_set():
            try:
                self._read_once()
            except httpx.HTTPError:
                pass  # a dropped connection: come back, as a browser does
            if not self.done.is_set():
                self._quit.wait(RECONNECT)

    def _read_once(self) -> None:
        headers = {**AUTH, **({"Last-Event-ID": str(self.last)} if self.last is not None else {})}
        # The web sends a heartbeat every second (--heartbeat 1): a read that waits longer is a dead link.
        timeout = httpx.Timeout(WAIT, read=5.0)
        with httpx.stream("GET", f"{self.web.url}/api/jobs/{self.job_id}/events", headers=headers,
                          timeout=timeout) as answer:
            if answer.status_code != 200:
                self.refused = answer.status_code
                self.done.set()
                return
            self.connects += 1
            name = None
            for line in answer.iter_lines():
                if self._quit.is_set():
                    return
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name in ("progress", "snapshot"):
                    event = {**json.loads(line[6:]), "_at": time.monotonic()}
                    with self._lock:
                        self.events.append(event)
                    self.last = event["seq"]
                elif line.startswith("data: ") and name == "done":
                    self.done.set()
                    return


def worker_pid(worker: Process) -> int:
    assert worker.proc is not None
    return worker.proc.pid


def still_running(*processes: Process) -> bool:
    return all(p.proc is not None and p.proc.poll() is None for p in processes)


def signal_pid(pid: int, sig: int) -> None:
    os.kill(pid, sig)
