"""A solver worker: claims jobs from the shared queue and runs them with the saga's runner.

Each run keeps its claim alive (`renew` every lease/3). A worker that stops (crash, kill,
lost machine) stops renewing, and after `lease` seconds any other worker's janitor takes its
claims over and runs them again as the next attempt; the takeover's first event raises the
job's attempt, so the stopped worker's late writes are refused (the store fences by attempt).
A job that ran out of attempts ends failed, saying so. The claim is acknowledged only once
the run's result and terminal event are stored. Cancels asked on any web instance reach the
worker that runs the job through the cancel signals.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Coroutine
from dataclasses import dataclass

from app.job_ends import end_unrun, job_event
from app.storage.queue import CancelSignals, Claim, JobQueue
from app.storage.redis_store import RedisStore
from app.storage.store import RETRY_FIRST, RETRY_MAX, JobRecord, StoreUnavailable
from app.workers.positions import tell_positions
from app.workers.sink import StoreSink
from saga.events import CANCELLED, FAILED, QUEUED, TERMINAL
from saga.jobs import JobSpec
from saga.runner import JobRunner
from solver.ctt import parse_ctt

log = logging.getLogger(__name__)
CLAIM_BLOCK = 5.0  # seconds one claim call waits for a job before it is asked again


@dataclass(frozen=True)
class WorkerSettings:
    consumer: str  # this worker's name in the queue's consumer group
    slots: int
    lease: float
    max_attempts: int


@dataclass
class WorkerStats:
    """Read by the worker's /metrics."""

    claimed: int = 0
    reclaimed: int = 0  # runs taken over from stopped workers
    exhausted: int = 0  # jobs failed for running out of attempts
    lost: int = 0  # runs stopped because another worker took them over
    store_errors: int = 0


class Worker:
    def __init__(self, store: RedisStore, queue: JobQueue, cancels: CancelSignals, settings: WorkerSettings) -> None:
        self._store, self._queue, self._cancels, self._settings = store, queue, cancels, settings
        self._sink = StoreSink(store, self._on_stale, lambda job_id: job_id in self._lost)
        self.runner = JobRunner(self._sink, self._sink, slots=settings.slots)
        self.stats = WorkerStats()
        self._free = asyncio.Semaphore(settings.slots)
        self._running: dict[str, Claim] = {}
        self._lost: set[str] = set()
        self._runs: set[asyncio.Task[None]] = set()
        self._chores: set[asyncio.Task[None]] = set()
        cancels.on_resubscribed = self._recheck_cancels

    @property
    def busy(self) -> int:
        return len(self._runs)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; then kill the children (their claims lapse and another
        worker takes the jobs over after the lease)."""
        loops = [asyncio.create_task(coro, name=name) for name, coro in (
            ("claims", self._claims()), ("janitor", self._janitor()), ("cancels", self._listen_cancels()))]
        try:
            await stop.wait()
        finally:
            for task in [*loops, *self._runs, *self._chores]:
                task.cancel()
            await asyncio.gather(*loops, *self._runs, *self._chores, return_exceptions=True)
            await self.runner.close()

    async def _claims(self) -> None:
        delay = RETRY_FIRST
        while True:
            await self._free.acquire()
            try:
                claim = await self._queue.claim(self._settings.consumer, CLAIM_BLOCK)
            except StoreUnavailable as err:
                self._free.release()
                delay = await self._back_off(delay, f"claiming a job: {err.reason}")
                continue
            delay = RETRY_FIRST
            if claim is None:
                self._free.release()
                continue
            self.stats.claimed += 1
            self._start(claim)
            self._background(tell_positions(self._store, self._queue))  # the jobs behind moved up

    async def _janitor(self) -> None:
        """Every lease/3: take over the claims of stopped workers, while a slot is free (the
        claim loop may be waiting for a new job meanwhile; if both get one, the runner
        queues the second until a slot frees, its claim renewed all along)."""
        while True:
            await asyncio.sleep(self._settings.lease / 3)
            if self.busy >= self._settings.slots:
                continue  # no slot: leave them to a worker that has one
            try:
                taken = await self._queue.reclaim(self._settings.consumer, self._settings.lease, self._settings.max_attempts)
            except StoreUnavailable as err:
                self.stats.store_errors += 1
                log.warning("janitor: %s", err.reason)
                continue
            for claim in taken.exhausted:
                self.stats.exhausted += 1
                await self._give_up(claim)
            for claim in taken.runs:
                self.stats.reclaimed += 1
                self._start(claim, holds_slot=False)

    async def _listen_cancels(self) -> None:
        async for job_id in self._cancels.listen():
            if job_id in self._running:
                log.info("job %s: cancel asked", job_id)
                await self.runner.cancel(job_id)

    async def _recheck_cancels(self) -> None:
        """Back after a lost subscription: the cancels asked meanwhile."""
        for job_id in list(self._running):
            if await self._cancels.requested(job_id):
                await self.runner.cancel(job_id)

    async def _stop_run(self, job_id: str) -> None:
        await self.runner.cancel(job_id)

    def _background(self, chore: Coroutine[Any, Any, None]) -> None:
        """Run `chore` beside the worker's loops (kept, so it is not collected, and stopped with them)."""
        task = asyncio.get_running_loop().create_task(chore)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    def _start(self, claim: Claim, holds_slot: bool = True) -> None:
        task = asyncio.get_running_loop().create_task(self._run(claim), name=f"run:{claim.job_id}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        if holds_slot:
            task.add_done_callback(lambda _: self._free.release())

    async def _run(self, claim: Claim) -> None:
        renewing = asyncio.get_running_loop().create_task(self._renew(claim))
        try:
            job = await self._store.get_job(claim.job_id)
            if job is None or job.status in TERMINAL:
                await self._ack(claim)
                return
            if await self._cancels.requested(job.id):
                await end_unrun(self._store, self._sink.publish, job, CANCELLED, "Cancelled before it ran", job.attempt)
            else:
                await self._solve(job, claim)
            await self._store.landed(job.id)
            if job.id not in self._lost:
                await self._ack(claim)
        except Exception:
            log.exception("job %s: the worker could not run it; its claim lapses and another worker retries it", claim.job_id)
        finally:
            renewing.cancel()
            self._running.pop(claim.job_id, None)
            self._lost.discard(claim.job_id)

    async def _solve(self, job: JobRecord, claim: Claim) -> None:
        attempt = max(claim.attempt, job.attempt)
        latest = await self._store.latest_event(job.id)
        floor = latest.overall_progress if latest is not None else 0.0
        first_seq = job.last_seq + 1
        if attempt > job.attempt:  # a takeover: this event raises the attempt, fencing out the stopped worker
            message = f"Taken over from a stopped worker (attempt {attempt} of {self._settings.max_attempts})"
            log.info("job %s: %s", job.id, message)
            await self._sink.publish(job_event(job, QUEUED, message, attempt, overall=floor))
            first_seq += 1
        instance = await asyncio.to_thread(parse_ctt, job.instance_ctt, source=job.name)
        spec = JobSpec(job.id, instance, job.time_limit, seed=job.seed, attempt=attempt, first_seq=first_seq,
                       progress_floor=floor)
        self._running[job.id] = claim
        await self.runner.submit(spec)
        await self.runner.wait(job.id)

    async def _renew(self, claim: Claim) -> None:
        while True:
            await asyncio.sleep(self._settings.lease / 3)
            try:
                kept = await self._queue.renew(claim, self._settings.consumer)
            except StoreUnavailable as err:
                self.stats.store_errors += 1
                log.warning("job %s: claim not renewed: %s", claim.job_id, err.reason)
                continue  # the store fences our writes should another worker take it over meanwhile
            if not kept:
                self._on_stale(claim.job_id)
                return

    def _on_stale(self, job_id: str) -> None:
        """Another worker runs the job now: stop ours and write nothing more of it."""
        if job_id in self._lost:
            return
        self._lost.add(job_id)
        self.stats.lost += 1
        log.warning("job %s: taken over by another worker (or its claim lost with Redis data); stopping this run", job_id)
        self._background(self._stop_run(job_id))

    async def _give_up(self, claim: Claim) -> None:
        job = await self._store.get_job(claim.job_id)
        if job is None or job.status in TERMINAL:
            return
        reason = (f"Its worker stopped {self._settings.max_attempts} times (crash, kill or lost machine); "
                  "not retried again.")
        log.warning("job %s: %s", job.id, reason)
        await end_unrun(self._store, self._sink.publish, job, FAILED, reason, claim.attempt, error=reason)

    async def _ack(self, claim: Claim) -> None:
        delay = RETRY_FIRST
        while True:
            try:
                await self._queue.ack(claim)
                return
            except StoreUnavailable as err:
                delay = await self._back_off(delay, f"acknowledging job {claim.job_id}: {err.reason}")

    async def _back_off(self, delay: float, what: str) -> float:
        """Wait `delay` seconds, jittered; the next delay."""
        self.stats.store_errors += 1
        log.warning("%s; retrying in %.1f s", what, delay)
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        return min(delay * 2, RETRY_MAX * 2.5)
