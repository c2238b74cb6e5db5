"""Events of a job that no solver is running: queued again, failed for good, cancelled
before it ran. Written by whoever decides it: the web edge's restart recovery and queue-side
cancel, a worker's janitor when a job ran out of attempts.
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable

from app.storage.store import JobRecord, Store, StoreUnavailable
from saga.events import FAILED, ProgressEvent
from saga.jobs import Feasibility, JobOutcome, feasibility_fields

Publish = Callable[[ProgressEvent], Awaitable[None]]


def job_event(
    job: JobRecord, status: str, message: str, attempt: int, error: str | None = None,
    feasibility: Feasibility | None = None, overall: float = 0.0, seq: int | None = None,
) -> ProgressEvent:
    """An event of `job` outside any run; seq after the job's last unless given."""
    ended = status == FAILED
    return ProgressEvent(
        job_id=job.id, seq=job.last_seq + 1 if seq is None else seq, status=status, stage=None, stage_progress=0.0,
        overall_progress=100.0 if ended else overall, eta_seconds=0.0 if ended else None,
        started_at=None, updated_at=time.time(), message=message, error=error, attempt=attempt,
        **feasibility_fields(feasibility),
    )


async def end_unrun(store: Store, publish: Publish, job: JobRecord, status: str, message: str,
                    attempt: int, error: str | None = None) -> None:
    """End a job that is not running with `status`: the result goes first, keeping the
    timetable an earlier run left (as a run's end does), then the terminal event."""
    try:
        previous = await store.get_result(job.id)
    except Exception:  # its instance no longer reads: there is no timetable to keep
        previous = None
    outcome = JobOutcome(
        job.id, status, previous.timetable if previous else None, previous.cost if previous else None,
        previous.stage_costs if previous else {}, error, time.time(), attempt=attempt,
    )
    try:
        await store.save_result(outcome)
    except StoreUnavailable:
        pass  # kept in memory and retried by the store; readers see it already
    await publish(job_event(job, status, message, attempt, error=error, feasibility=outcome.feasibility))
