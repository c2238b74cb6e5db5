"""Runs jobs in child processes, a few at a time, with a queue, cancellation and kill."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field

from saga.child import ChildError, ChildProgress, ChildResult, ChildTask, readable_error
from saga.eta import EtaSettings
from saga.events import CANCELLED, COMPLETED, FAILED, EventSink
from saga.jobs import CancelResult, JobOutcome, JobSpec, ResultNotSaved, ResultSink
from saga.process import ChildHandle, PipeClosed, ReaderFailed
from saga.reporter import JobReporter
from saga.weights import DEFAULT_WEIGHTS, StageWeights
from solver.evaluate import Cost, evaluate
from solver.timetable import Timetable

log = logging.getLogger(__name__)

_CANCEL, _OVERRUN = "cancel", "overrun"


# Seconds past its budget after which a running job is stopped and keeps its best
# timetable: process start-up plus the last step of a stage winding down. The pipeline
# keeps its own deadline; this is the net under it.
OVERRUN_SLACK = 10.0


def overrun_deadline(time_limit: float) -> float:
    """Seconds after which a job that has not finished is stopped, never forever."""
    return time_limit + OVERRUN_SLACK


@dataclass(eq=False)
class _Job:
    spec: JobSpec
    reporter: JobReporter
    done: asyncio.Future[None]
    handle: ChildHandle | None = None
    task: asyncio.Task[None] | None = None
    stop_reason: str | None = None
    ending: bool = False  # the outcome is decided (set once, by _end); a cancel comes too late
    best: Timetable | None = None  # the last best-so-far timetable the child sent
    timers: list[asyncio.Task[None]] = field(default_factory=list)


class JobRunner:
    def __init__(
        self,
        events: EventSink,
        results: ResultSink,
        *,
        slots: int | None = None,
        max_events_per_second: float = 20,
        kill_grace: float = 2.0,
        weights: StageWeights = DEFAULT_WEIGHTS,
        eta: EtaSettings = EtaSettings(),
    ) -> None:
        self._events, self._results = events, results
        self._slots = slots or os.cpu_count() or 1
        self._max_events, self._kill_grace = max_events_per_second, kill_grace
        self._weights, self._eta = weights, eta
        self._jobs: dict[str, _Job] = {}
        self._queue: deque[_Job] = deque()
        self._running: dict[str, _Job] = {}
        self._closed = False
        # One announcement of queue positions at a time, read from the live queue: two
        # interleaved passes (or one walking a stale copy) would tell a job an old place last.
        self._announcing = asyncio.Lock()

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def busy_slots(self) -> int:
        return len(self._running)

    async def submit(self, spec: JobSpec) -> None:
        if self._closed:
            raise RuntimeError("the job runner is closed")
        if spec.job_id in self._jobs:
            raise ValueError(f"job {spec.job_id} is already active")
        reporter = JobReporter(spec, self._events, self._weights, self._max_events, self._eta)
        job = _Job(spec, reporter, asyncio.get_running_loop().create_future())
        self._jobs[spec.job_id] = job
        self._queue.append(job)
        await self._pump()

    async def cancel(self, job_id: str) -> CancelResult:
        job = self._jobs.get(job_id)
        if job is None or job.ending:
            return CancelResult.UNKNOWN
        if job in self._queue:
            self._queue.remove(job)
            await self._end(job, self._outcome(job, CANCELLED, Timetable.empty(job.spec.instance)))
            self._forget(job)
            await self._pump()
            return CancelResult.REMOVED
        if job.stop_reason != _CANCEL:
            self._stop(job, _CANCEL)
        return CancelResult.STOPPING

    async def wait(self, job_id: str) -> None:
        """Return when the job has ended (at once if it is not active)."""
        job = self._jobs.get(job_id)
        if job is not None:
            await asyncio.shield(job.done)

    async def close(self) -> None:
        """Kill every child and forget every job. No terminal events are published:
        the jobs are unfinished, and whoever restarts the service may run them again."""
        self._closed = True
        for job in self._queue:
            self._forget(job)
        self._queue.clear()
        tasks = [job.task for job in self._running.values() if job.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _pump(self) -> None:
        """Start queued jobs while slots are free, then tell the rest their place in line."""
        while self._queue and len(self._running) < self._slots and not self._closed:
            job = self._queue.popleft()
            spec = job.spec
            task = ChildTask(spec.instance, spec.time_limit, spec.seed, spec.workers)
            job.handle = ChildHandle(task, name=f"saga-{spec.job_id}")
            self._running[spec.job_id] = job
            job.task = asyncio.get_running_loop().create_task(self._run(job), name=f"saga-{spec.job_id}")
        await self._announce_positions()

    async def _announce_positions(self) -> None:
        """Tell each waiting job its place in line. The queue may change at every await:
        each place is read just before it is told, and a job that left is skipped (its
        reporter refuses once its end is decided). A change during the pass starts another
        pass after this one, so the last place a job hears is its real one."""
        async with self._announcing:
            for job in list(self._queue):
                if job in self._queue and not job.ending:
                    await job.reporter.queued(self._queue.index(job) + 1)

    async def _run(self, job: _Job) -> None:
        assert job.handle is not None
        try:
            try:
                outcome = await self._execute(job, job.handle)
            except Exception as exc:  # e.g. the process could not be started
                log.exception("job %s could not run", job.spec.job_id)
                outcome = self._outcome(job, FAILED, None, error=f"The solver could not run: {readable_error(exc)}")
            await self._end(job, outcome)
        finally:
            for timer in job.timers:
                timer.cancel()
            # Reap it: after a result it exits by itself; on close it is killed at once,
            # also when close() cancels this task while it gives the child its patience.
            try:
                await job.handle.kill(patience=0.0 if self._closed else 1.0)
            except asyncio.CancelledError:
                await job.handle.kill()
                raise
            del self._running[job.spec.job_id]
            self._forget(job)
            if not self._closed:
                await self._pump()

    async def _execute(self, job: _Job, handle: ChildHandle) -> JobOutcome:
        await handle.start()
        await job.reporter.running()
        job.timers.append(asyncio.create_task(self._watch_overrun(job)))
        while True:
            for msg in await handle.next_messages():
                if isinstance(msg, ChildProgress):
                    if msg.period is not None and msg.room is not None:
                        job.best = Timetable(job.spec.instance, msg.period, msg.room)
                    await job.reporter.progress(msg)
                elif isinstance(msg, ChildResult):
                    timetable = Timetable(job.spec.instance, msg.period, msg.room)
                    status = CANCELLED if job.stop_reason == _CANCEL else COMPLETED
                    return self._outcome(job, status, timetable, msg.stage_costs)
                elif isinstance(msg, ChildError):
                    return self._outcome(job, FAILED, job.best, error=f"The solver failed: {msg.message}")
                elif isinstance(msg, ReaderFailed):  # the child is killed when _run ends
                    return self._outcome(job, FAILED, job.best, error=f"Lost contact with the solver: {msg.message}")
                elif isinstance(msg, PipeClosed):
                    return await self._exit_outcome(job, handle)
            await job.reporter.publish_latest()

    async def _exit_outcome(self, job: _Job, handle: ChildHandle) -> JobOutcome:
        """The child ended without a result: killed on cancel, or it died."""
        if job.stop_reason == _CANCEL:
            return self._outcome(job, CANCELLED, job.best or Timetable.empty(job.spec.instance))
        if job.stop_reason == _OVERRUN:
            return self._outcome(job, FAILED, job.best, error="The solver did not finish within its time limit.")
        return self._outcome(job, FAILED, job.best, error=await handle.exit_description())

    async def _end(self, job: _Job, outcome: JobOutcome) -> None:
        """The one end of a job: save the result, then (and only then) publish the terminal
        event. A second call does nothing. A result that cannot be saved ends the job failed,
        saying why, rather than leaving it running for ever."""
        if job.ending:
            return
        job.ending = True  # before any await: a racing cancel or end sees it at once
        await job.reporter.hold()
        try:
            await self._results.save_result(outcome)
        except ResultNotSaved as err:
            outcome = err.outcome
        except Exception as err:
            log.exception("job %s: saving its result failed", job.spec.job_id)
            outcome = self._outcome(job, FAILED, None, error=f"The result could not be saved: {readable_error(err)}")
        try:
            await job.reporter.finish(outcome)
        except Exception:
            log.exception("job %s: publishing its end failed", job.spec.job_id)

    def _outcome(
        self,
        job: _Job,
        status: str,
        timetable: Timetable | None,
        stage_costs: dict[str, Cost] | None = None,
        error: str | None = None,
    ) -> JobOutcome:
        cost = evaluate(timetable) if timetable is not None else None
        return JobOutcome(job.spec.job_id, status, timetable, cost, stage_costs or {}, error, time.time(),
                          attempt=job.spec.attempt)

    def _stop(self, job: _Job, reason: str) -> None:
        """Ask the child to stop; kill it if it has not stopped after the grace period."""
        job.stop_reason = reason
        if job.handle is not None:
            job.handle.request_stop()
        job.timers.append(asyncio.create_task(self._kill_after_grace(job)))

    async def _kill_after_grace(self, job: _Job) -> None:
        await asyncio.sleep(self._kill_grace)
        if job.handle is not None and not job.ending:
            log.warning("job %s did not stop within %.1f s; killing it", job.spec.job_id, self._kill_grace)
            await job.handle.kill()

    async def _watch_overrun(self, job: _Job) -> None:
        await asyncio.sleep(overrun_deadline(job.spec.time_limit))
        if job.stop_reason is None:
            self._stop(job, _OVERRUN)

    def _forget(self, job: _Job) -> None:
        self._jobs.pop(job.spec.job_id, None)
        if not job.done.done():
            job.done.set_result(None)
