"""Builds and publishes one job's progress events: seq, words, ETA, rate limit."""

from __future__ import annotations

import asyncio
import time

from saga.child import ChildProgress
from saga.coalesce import Coalescer
from saga.eta import EtaEstimator, EtaSettings
from saga.events import CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING, Best, EventSink, ProgressEvent
from saga.jobs import Feasibility, JobOutcome, JobSpec, feasibility_fields
from saga.tracker import ProgressTracker
from saga.weights import StageWeights
from solver.progress import CLUSTERING, CPSAT, GA, LOADING, REFINEMENT, cpsat_step

_STAGE_WORDS = {
    LOADING: "Reading the timetable data",
    CLUSTERING: "Grouping courses that share students or teachers",
    GA: "Improving the timetable",
    REFINEMENT: "Fine-tuning the timetable",
}
_END_WORDS = {
    COMPLETED: "Timetable ready",
    CANCELLED: "Stopped on request; the best timetable found so far is kept",
    FAILED: "Stopped by an error",
}
_INCOMPLETE_WORDS = {
    COMPLETED: "Finished without a complete timetable",
    CANCELLED: "Stopped on request; the best timetable found so far is kept but is incomplete",
}


def _counted(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def shortfall(feasibility: Feasibility) -> str:
    """What keeps a timetable from being complete, e.g. "41 of 1,705 lectures unplaced, 3 other hard violations"."""
    f = feasibility
    parts = [f"{f.unplaced:,} of {f.lectures:,} lectures unplaced"] if f.unplaced else []
    others = f.hard_violations - f.unplaced
    if others > 0:
        parts.append(_counted(others, "other hard violation" if parts else "hard violation"))
    return ", ".join(parts)


def waiting_message(position: int | None) -> str:
    """A queued job's words: its place in line (1 = next)."""
    return f"Waiting for a free solver (number {position} in line)"


class JobReporter:
    def __init__(
        self,
        spec: JobSpec,
        sink: EventSink,
        weights: StageWeights,
        max_per_second: float,
        eta: EtaSettings = EtaSettings(),
    ) -> None:
        self.spec = spec
        self.tracker = ProgressTracker(weights)
        self._sink = sink
        self._seq = spec.first_seq - 1
        self._eta = EtaEstimator(eta)
        self._eta_started = False
        self._coalescer = Coalescer(self._publish, max_per_second)
        self._started_at: float | None = None
        self._best: Best | None = None
        self._queue_position: int | None = None
        self._feasibility: Feasibility | None = None  # known once the job has ended with a timetable
        self._publishing = asyncio.Lock()  # keeps the sink's calls in seq order
        self._held = False  # the end is decided: no progress may be published any more
        self._finished = False  # the terminal event went out: it is the last one

    async def queued(self, position: int) -> None:
        """Publish the job's place in line (1 = next), when it changed."""
        if position != self._queue_position and not self._held:
            self._queue_position = position
            await self._coalescer.push(urgent=True)

    async def running(self) -> None:
        if self._held:
            return
        self._queue_position, self._started_at = None, time.time()
        self.tracker.start_stage(LOADING)
        await self._coalescer.push(urgent=True)

    async def progress(self, msg: ChildProgress) -> None:
        """Take in one report; stage boundaries are published at once, the rest by `publish_latest`."""
        if self._held:
            return
        now = time.monotonic()
        if not self._eta_started:  # the solver's clock (its time budget) starts with its first report
            self._eta.start(now, budget=self.spec.time_limit)
            self._eta_started = True
        if msg.best is not None:
            self._best = Best(msg.best.hard, msg.best.soft)
        if msg.stage != self.tracker.stage:
            self.tracker.complete_stage()
            await self._coalescer.push(urgent=True)
            self.tracker.start_stage(msg.stage)
            self.tracker.report(msg.done, msg.total)
            await self._coalescer.push(urgent=True)
        else:
            self.tracker.report(msg.done, msg.total)
        self._eta.observe(now, self.tracker.overall)

    async def publish_latest(self) -> None:
        await self._coalescer.push()

    async def hold(self) -> None:
        """Stop publishing progress for good: the terminal event comes next, after the result
        is saved. Returns once a progress event already under way has been published."""
        self._held = True
        await self._coalescer.close()

    async def finish(self, outcome: JobOutcome) -> None:
        """Publish the terminal event: once, and nothing after it."""
        if self._finished:
            raise RuntimeError(f"job {self.spec.job_id} has already ended")
        self._finished = self._held = True
        await self._coalescer.close()
        if outcome.status == COMPLETED:
            self.tracker.mark_completed()
        elif outcome.status == CANCELLED:
            self.tracker.mark_cancelled()
        else:
            self.tracker.mark_failed(outcome.error or "unknown error")
        self._queue_position = None
        self._feasibility = outcome.feasibility
        await self._publish()

    async def _publish(self) -> None:
        async with self._publishing:
            self._seq += 1
            await self._sink.publish(self._event(self._seq))

    def _event(self, seq: int) -> ProgressEvent:
        t = self.tracker
        eta = 0.0 if t.finished else self._eta.estimate(time.monotonic(), t.overall)
        return ProgressEvent(
            job_id=self.spec.job_id,
            seq=seq,
            status=t.status,
            stage=t.stage,
            stage_progress=t.stage_progress,
            overall_progress=self._overall(),
            eta_seconds=eta,
            started_at=self._started_at,
            updated_at=time.time(),
            message=self._message(),
            items=t.items,
            best=self._best,
            error=t.error,
            attempt=self.spec.attempt,
            queue_position=self._queue_position,
            **feasibility_fields(self._feasibility),
        )

    def _overall(self) -> float:
        """This run's percent, spread over what an earlier attempt left (progress_floor)."""
        floor = self.spec.progress_floor
        if floor <= 0.0:
            return self.tracker.overall
        return round(floor + (100.0 - floor) * self.tracker.overall / 100.0, 2)

    def _message(self) -> str:
        words = self._words()
        if self.spec.attempt > 1 and self.tracker.status == RUNNING:
            return f"{words} (attempt {self.spec.attempt}: started again after an interruption)"
        return words

    def _words(self) -> str:
        t = self.tracker
        if t.status == QUEUED:
            return waiting_message(self._queue_position)
        if t.status == CANCELLED and t.stage is None:
            return "Cancelled before it started"
        if t.status != RUNNING:
            return self._end_message(t.status)
        if t.stage == CPSAT and t.items is not None and t.items.total > 0:
            placing, group, groups = cpsat_step(t.items.done, t.items.total)
            if placing:
                return f"Placing lectures (group {group} of {groups})"
            return f"Improving groups of courses with CP-SAT (group {group} of {groups})"
        return _STAGE_WORDS.get(t.stage or "", "Placing lectures")

    def _end_message(self, status: str) -> str:
        f = self._feasibility
        if f is None or f.feasible or status not in _INCOMPLETE_WORDS:
            return _END_WORDS[status]
        return f"{_INCOMPLETE_WORDS[status]}: {shortfall(f)}"
