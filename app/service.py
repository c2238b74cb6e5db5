"""Jobs as the web edge runs them: stored, handed to the saga runner, followed to the end.

`JobService` is the runner's EventSink (the hub fans the event out, then the store writes it,
so the live streams do not wait for the write; the hub covers the moment in between for
streams that subscribe then, so a subscriber who re-reads the log never misses an event;
a shutdown still lets the write land) and its ResultSink.

A store that refuses writes (disk full, locked) never leaves a job running for ever: the
store keeps what it could not write in memory and retries it (readers see it meanwhile),
the owner's quota is freed as soon as the job stops running, and a result still not
stored after `result_patience` seconds ends the job failed, saying why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, Protocol

from app.storage.store import RETRY_FIRST, RETRY_MAX, JobRecord, Store, StoreUnavailable
from app.web.metrics import Metrics
from saga.child import readable_error
from saga.events import FAILED, QUEUED, RUNNING, ProgressEvent
from app.job_ends import end_unrun, job_event
from saga.jobs import CancelResult, JobOutcome, JobSpec, ResultNotSaved
from solver.ctt import parse_ctt
from solver.model import Instance

log = logging.getLogger(__name__)
# Seconds a finished job's result is retried on a store that refuses it before the job ends failed.
RESULT_PATIENCE = 60.0


class Publisher(Protocol):
    def publish(self, event: ProgressEvent, *, storing: bool = False) -> None: ...

    def stored(self, event: ProgressEvent) -> None: ...


class Runner(Protocol):
    async def submit(self, spec: JobSpec) -> None: ...

    async def cancel(self, job_id: str) -> CancelResult: ...


class Slots(Protocol):
    """What runs jobs, as /api/health and shutdown see it."""

    @property
    def slots(self) -> int: ...

    @property
    def busy_slots(self) -> int: ...

    async def close(self) -> None: ...


class JobService:
    def __init__(self, store: Store, hub: Publisher | None, metrics: Metrics, *, result_patience: float = RESULT_PATIENCE,
                 count_active: Callable[[str], Awaitable[int]] | None = None) -> None:
        # hub None: another process's events reach this one's hub through the store (Redis; app/web/redis_follow.py).
        # count_active: the owner's active jobs counted in a store that other instances share.
        self._count_active = count_active
        self.store, self.hub, self.metrics = store, hub, metrics
        self.result_patience = result_patience
        self.runner: Runner | None = None  # set once the runner, which needs this sink, exists
        self._active: dict[str, str] = {}  # job id -> owner, for queued and running jobs

    async def publish(self, event: ProgressEvent) -> None:
        # The fan-out first, then the store write: the live streams do not wait for the write.
        # (Started together, the store's writer thread would take the fan-out's core and GIL
        # turns, for no gain on this 2-core machine.) Until the write lands, the hub hands the
        # event to streams that subscribe, whose replay of the log cannot have it yet.
        if self.hub is not None:
            self.hub.publish(event, storing=True)
        writing = asyncio.ensure_future(self.store.append_event(event))
        try:
            await asyncio.shield(writing)  # cancelled (shutdown), the write still lands: streams were told
        except StoreUnavailable:
            pass  # kept in memory and retried by the store, which logs it; readers see it already
        finally:
            if self.hub is not None:
                self.hub.stored(event)
        if event.terminal:
            self._active.pop(event.job_id, None)
        self.metrics.observe(event)

    async def save_result(self, outcome: JobOutcome) -> None:
        """Store the outcome; while the store refuses, retry with backoff for up to
        `result_patience` seconds, then keep a failed outcome instead (ResultNotSaved)."""
        try:
            await self.store.save_result(outcome)
            return
        except StoreUnavailable as err:
            reason = err.reason
        # It runs no more: its owner may submit again. The store keeps the outcome in memory
        # meanwhile, so the snapshot and the timetable download already answer from it.
        self._active.pop(outcome.job_id, None)
        log.warning("job %s: its result cannot be stored yet (%s); retrying for %g s", outcome.job_id, reason, self.result_patience)
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + self.result_patience, RETRY_FIRST
        while (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, RETRY_MAX)
            try:
                await self.store.save_result(outcome)
            except StoreUnavailable as err:
                reason = err.reason
                continue
            log.info("job %s: its result is stored after all", outcome.job_id)
            return
        error = f"The result could not be saved, so it is lost: {reason}"
        log.error("job %s: %s", outcome.job_id, error)
        failed = JobOutcome(outcome.job_id, FAILED, None, None, {}, error, time.time(), attempt=outcome.attempt)
        await self._keep_result(failed)  # supersedes the outcome kept in memory
        raise ResultNotSaved(failed)

    async def _keep_result(self, outcome: JobOutcome) -> None:
        try:
            await self.store.save_result(outcome)
        except StoreUnavailable:
            pass  # kept in memory and retried by the store; readers see it already

    async def active_jobs(self, owner: str) -> int:
        """The owner's queued and running jobs: counted here, or, when other instances submit
        and workers end jobs, in the shared store."""
        if self._count_active is not None:
            return await self._count_active(owner)
        return sum(1 for o in self._active.values() if o == owner)

    async def submit(self, job: JobRecord, instance: Instance) -> None:
        """Store a new job and queue it."""
        await self.store.create_job(job)
        await self._run(job, instance, attempt=1, first_seq=1)

    async def _run(
        self, job: JobRecord, instance: Instance, *, attempt: int, first_seq: int, progress_floor: float = 0.0
    ) -> None:
        assert self.runner is not None, "JobService.runner must be set before jobs are submitted"
        self._active[job.id] = job.owner
        spec = JobSpec(job.id, instance, job.time_limit, seed=job.seed, attempt=attempt, first_seq=first_seq,
                       progress_floor=progress_floor)
        await self.runner.submit(spec)

    async def cancel(self, job_id: str) -> CancelResult:
        assert self.runner is not None
        return await self.runner.cancel(job_id)

    async def recover(self, max_attempts: int) -> None:
        """Run again the jobs a crash or restart interrupted, up to `max_attempts` runs each.
        A job that was running lost a run; one still queued never ran and keeps its attempt.
        A job whose stored instance no longer reads is failed; the others still run."""
        for job in await self.store.unfinished_jobs():
            ran = job.status == RUNNING
            attempt = job.attempt + 1 if ran else job.attempt
            if attempt > max_attempts:
                await self._give_up(job, f"Interrupted {max_attempts} times by restarts; not retried again.")
                continue
            try:
                instance = parse_ctt(job.instance_ctt, source=job.name)
            except Exception as err:  # InstanceError, or whatever a changed reader makes of old text
                await self._give_up(job, f"Could not be run again after a restart: its stored instance "
                                         f"no longer reads ({readable_error(err)}).")
                continue
            # Its bar continues from where the interrupted run's events left it.
            latest = await self.store.latest_event(job.id)
            floor = latest.overall_progress if latest is not None else 0.0
            if ran:
                message = f"Restarted after an interruption (attempt {attempt} of {max_attempts})"
            else:
                message = f"Queued again after a restart (attempt {attempt} of {max_attempts})"
            log.info("job %s: %s", job.id, message)
            await self.publish(job_event(job, QUEUED, message, attempt, overall=floor))
            await self._run(job, instance, attempt=attempt, first_seq=job.last_seq + 2, progress_floor=floor)

    async def _give_up(self, job: JobRecord, reason: str) -> None:
        log.warning("job %s: %s", job.id, reason)
        await end_unrun(self.store, self.publish, job, FAILED, reason, job.attempt, error=reason)
