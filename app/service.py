"""Jobs as the web edge runs them: stored, handed to the saga runner, followed to the end.

`JobService` is the runner's EventSink (store first, then the hub, so a subscriber
who re-reads the log never misses what it was told) and its ResultSink.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from app.metrics import Metrics
from app.store import JobRecord, Store
from saga.events import FAILED, QUEUED, ProgressEvent
from saga.jobs import CancelResult, Feasibility, JobOutcome, JobSpec, feasibility_fields
from solver.ctt import parse_ctt
from solver.model import Instance

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, event: ProgressEvent) -> None: ...


class Runner(Protocol):
    async def submit(self, spec: JobSpec) -> None: ...

    async def cancel(self, job_id: str) -> CancelResult: ...


class JobService:
    def __init__(self, store: Store, hub: Publisher, metrics: Metrics) -> None:
        self.store, self.hub, self.metrics = store, hub, metrics
        self.runner: Runner | None = None  # set once the runner, which needs this sink, exists
        self._active: dict[str, str] = {}  # job id -> owner, for queued and running jobs

    async def publish(self, event: ProgressEvent) -> None:
        await self.store.append_event(event)
        if event.terminal:
            self._active.pop(event.job_id, None)
        self.metrics.observe(event)
        self.hub.publish(event)

    async def save_result(self, outcome: JobOutcome) -> None:
        await self.store.save_result(outcome)

    def active_jobs(self, owner: str) -> int:
        return sum(1 for o in self._active.values() if o == owner)

    async def submit(self, job: JobRecord, instance: Instance) -> None:
        """Store a new job and queue it."""
        await self.store.create_job(job)
        await self._run(job, instance, attempt=1, first_seq=1)

    async def _run(self, job: JobRecord, instance: Instance, *, attempt: int, first_seq: int) -> None:
        assert self.runner is not None, "JobService.runner must be set before jobs are submitted"
        self._active[job.id] = job.owner
        spec = JobSpec(job.id, instance, job.time_limit, seed=job.seed, attempt=attempt, first_seq=first_seq)
        await self.runner.submit(spec)

    async def cancel(self, job_id: str) -> CancelResult:
        assert self.runner is not None
        return await self.runner.cancel(job_id)

    async def recover(self, max_attempts: int) -> None:
        """Run again the jobs a crash or restart interrupted, up to `max_attempts` runs each."""
        for job in await self.store.unfinished_jobs():
            attempt = job.attempt + 1
            if attempt > max_attempts:
                await self._give_up(job, max_attempts)
                continue
            message = f"Restarted after an interruption (attempt {attempt} of {max_attempts})"
            log.info("job %s: %s", job.id, message)
            await self.publish(_event(job, QUEUED, message, attempt))
            await self._run(job, parse_ctt(job.instance_ctt, source=job.name), attempt=attempt, first_seq=job.last_seq + 2)

    async def _give_up(self, job: JobRecord, max_attempts: int) -> None:
        reason = f"Interrupted {max_attempts} times by restarts; not retried again."
        log.warning("job %s: %s", job.id, reason)
        # The result goes first, as the runner does: a final event always has its result stored.
        previous = await self.store.get_result(job.id)
        outcome = JobOutcome(
            job.id, FAILED, previous.timetable if previous else None, previous.cost if previous else None,
            previous.stage_costs if previous else {}, reason, time.time(),
        )
        await self.save_result(outcome)
        await self.publish(_event(job, FAILED, reason, job.attempt, error=reason, feasibility=outcome.feasibility))


def _event(
    job: JobRecord, status: str, message: str, attempt: int, error: str | None = None,
    feasibility: Feasibility | None = None,
) -> ProgressEvent:
    now = time.time()
    return ProgressEvent(
        job_id=job.id, seq=job.last_seq + 1, status=status, stage=None, stage_progress=0.0,
        overall_progress=100.0 if status == FAILED else 0.0, eta_seconds=0.0 if status == FAILED else None,
        started_at=None, updated_at=now, message=message, error=error, attempt=attempt,
        **feasibility_fields(feasibility),
    )
