"""Shared by the store tests: a job, its events and an outcome, as a store keeps them.

Only solver and storage imports: the store tests run without the web app."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

from app.storage.store import JobRecord
from saga.events import COMPLETED, QUEUED, RUNNING, Best, Items, ProgressEvent
from saga.jobs import JobOutcome
from solver.ctt import parse_ctt
from solver.evaluate import evaluate
from solver.timetable import Timetable
from tests.conftest import TINY_CTT


def job(job_id: str, owner: str = "alice", created_at: float = 1000.0) -> JobRecord:
    return JobRecord(job_id, owner, f"name-{job_id}", QUEUED, created_at, 5.0, 7, 1, TINY_CTT, 0)


def event(job_id: str, seq: int, status: str = RUNNING, attempt: int = 1) -> ProgressEvent:
    return ProgressEvent(
        job_id=job_id, seq=seq, status=status, stage="cpsat_solving", stage_progress=10.0 * seq,
        overall_progress=float(seq), eta_seconds=3.5, started_at=1.0, updated_at=2.0 + seq,
        message=f"step {seq}", items=Items(seq, 10), best=Best(0, seq), attempt=attempt,
    )


def outcome(job_id: str, attempt: int = 1) -> JobOutcome:
    """A completed job's outcome: a timetable of job()'s instance with one lecture placed."""
    instance = parse_ctt(TINY_CTT)
    period, room = Timetable.empty(instance).arrays()
    period[0], room[0] = 3, 1
    tt = Timetable.from_arrays(instance, period, room)
    cost = evaluate(tt)
    return JobOutcome(job_id, COMPLETED, tt, cost, {"cpsat_solving": cost}, None, time.time(), attempt)


async def until(check: Callable[[], Awaitable[bool]], what: str, wait: float = 10.0) -> None:
    """Await `check` every 20 ms until it holds; fail after `wait` seconds saying `what`."""
    deadline = time.monotonic() + wait
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
