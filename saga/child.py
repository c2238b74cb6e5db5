"""The solver's own process: runs the pipeline, forwards progress and the best
timetable so far to the parent over a pipe, and stops when asked or orphaned."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Callable

from solver.evaluate import Cost
from solver.model import Instance
from solver.pipeline import SolveOptions, solve
from solver.progress import Progress

# Seconds between progress messages (stage changes and the final state are sent at once).
SEND_INTERVAL = 0.02
# Sent by a terminal or a service manager to a whole process group; saga.process blocks
# them while spawning this process, and run_child ignores them.
GROUP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
# How often the stop flag and the parent's liveness are looked at.
STOP_POLL = 0.01
PARENT_POLL = 0.25


@dataclass(frozen=True)
class ChildProgress:
    stage: str
    done: int
    total: int
    best: Cost | None
    # The best timetable so far, when it improved since the last message.
    period: tuple[int, ...] | None = None
    room: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ChildResult:
    period: tuple[int, ...]
    room: tuple[int, ...]
    stage_costs: dict[str, Cost]


@dataclass(frozen=True)
class ChildError:
    message: str


@dataclass(frozen=True)
class ChildTask:
    instance: Instance
    time_limit: float
    seed: int
    workers: int


class _Forwarder:
    """Sends progress at most every SEND_INTERVAL; a held message keeps the newest
    counts and the newest improved timetable, and a background thread sends it
    even when the solver goes quiet for a while."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._held: ChildProgress | None = None
        self._last_sent = 0.0
        self._sent_stage: str | None = None
        self._closed = threading.Event()
        threading.Thread(target=self._flush_loop, daemon=True, name="progress-flush").start()

    def on_progress(self, p: Progress) -> None:
        period, room = (p.timetable.period, p.timetable.room) if p.timetable is not None else (None, None)
        msg = ChildProgress(p.stage, p.done, p.total, p.best, period, room)
        with self._lock:
            held = self._held
            if held is not None and held.stage != msg.stage:
                self._send(held)  # the last report of the previous stage
            elif held is not None and msg.period is None:
                msg = replace(msg, period=held.period, room=held.room)
            self._held = msg
            if msg.stage != self._sent_stage or time.monotonic() - self._last_sent >= SEND_INTERVAL:
                self._send(msg)

    def send(self, message: object) -> None:
        with self._lock:
            if self._held is not None:
                self._send(self._held)
            self._closed.set()
            _send_or_exit(self._conn, message)

    def _send(self, msg: ChildProgress) -> None:
        _send_or_exit(self._conn, msg)
        self._held, self._last_sent, self._sent_stage = None, time.monotonic(), msg.stage

    def _flush_loop(self) -> None:
        while not self._closed.wait(SEND_INTERVAL):
            with self._lock:
                if self._held is not None and not self._closed.is_set():
                    self._send(self._held)


class _StopFlag:
    """`should_stop` for the solver: reads the shared Event at most every STOP_POLL s."""

    def __init__(self, event: Event) -> None:
        self._event = event
        self._stopped = False
        self._next_look = 0.0

    def __call__(self) -> bool:
        if not self._stopped:
            now = time.monotonic()
            if now >= self._next_look:
                self._stopped, self._next_look = self._event.is_set(), now + STOP_POLL
        return self._stopped


def _send_or_exit(conn: Connection, message: object) -> None:
    """Send to the parent; when the pipe is broken the parent is gone, and so is the only
    reader of anything this process could say: leave at once, without a traceback."""
    try:
        conn.send(message)
    except OSError:  # BrokenPipeError, ConnectionResetError
        os._exit(1)


def _exit_with_parent(parent_pid: int) -> None:
    """A child whose parent died is re-parented; it must not run on alone."""
    while True:
        time.sleep(PARENT_POLL)
        if os.getppid() != parent_pid:
            os._exit(1)


def readable_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def run_child(conn: Connection, stop: Event, task: ChildTask, parent_pid: int) -> None:
    """Process entry point (spawn context)."""
    # Ctrl-C in a terminal (or a service manager's SIGTERM) reaches the whole process group;
    # the parent decides what it means (stop and keep the best, or shut down and run the job
    # again later), never this process. Born with them blocked; a pending one is dropped here.
    for signum in GROUP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, GROUP_SIGNALS)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()
    forwarder = _Forwarder(conn)
    try:
        result = _solve(task, forwarder.on_progress, _StopFlag(stop))
        forwarder.send(result)
    except Exception as exc:  # the parent reports it; a traceback is no use to the user
        forwarder.send(ChildError(readable_error(exc)))
    finally:
        conn.close()


def _solve(task: ChildTask, on_progress: Callable[[Progress], None], should_stop: Callable[[], bool]) -> ChildResult:
    options = SolveOptions(time_limit=task.time_limit, seed=task.seed, workers=task.workers)
    result = solve(task.instance, options, on_progress, should_stop)
    tt = result.timetable
    return ChildResult(tt.period, tt.room, dict(result.stage_costs))
