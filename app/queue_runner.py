"""A web instance's runner when workers solve the jobs (Redis): submitting queues the job,
cancelling removes it from the queue while no worker has it, or else asks the worker that
runs it to stop. With `--slots N` the instance also runs a worker of its own.
"""

from __future__ import annotations

import asyncio

from app.job_ends import end_unrun
from app.service import JobService
from app.storage.queue import CancelSignals, JobQueue
from app.storage.redis_store import RedisStore
from app.workers.positions import tell_positions
from app.workers.worker import Worker
from saga.events import CANCELLED, TERMINAL
from saga.jobs import CancelResult, JobSpec
from saga.reporter import JobReporter
from saga.weights import DEFAULT_WEIGHTS


class QueueRunner:
    def __init__(self, service: JobService, store: RedisStore, queue: JobQueue, cancels: CancelSignals,
                 worker: Worker | None = None) -> None:
        self._service, self._store, self._queue, self._cancels, self._worker = service, store, queue, cancels, worker
        self._stop = asyncio.Event()
        self._working: asyncio.Task[None] | None = None

    @property
    def slots(self) -> int:
        return self._worker.runner.slots if self._worker is not None else 0

    @property
    def busy_slots(self) -> int:
        return self._worker.busy if self._worker is not None else 0

    def start(self) -> None:
        if self._worker is not None:
            self._working = asyncio.get_running_loop().create_task(self._worker.run(self._stop), name="worker")

    async def submit(self, spec: JobSpec) -> None:
        position = await self._queue.length() + 1
        # The job's first event, as an embedded runner's reporter writes it.
        await JobReporter(spec, self._service, DEFAULT_WEIGHTS, max_per_second=0).queued(position)
        await self._queue.enqueue(spec.job_id)

    async def cancel(self, job_id: str) -> CancelResult:
        store = self._store
        if await self._queue.remove(job_id):
            job = await store.get_job(job_id)
            if job is not None:
                await end_unrun(store, self._service.publish, job, CANCELLED, "Cancelled before it ran", job.attempt)
            await tell_positions(self._store, self._queue)  # the jobs behind it moved up
            return CancelResult.REMOVED
        head = await store.job_head(job_id)
        if head is None or head.status in TERMINAL:
            return CancelResult.UNKNOWN
        await self._cancels.request(job_id)
        return CancelResult.STOPPING

    async def close(self) -> None:
        self._stop.set()
        if self._working is not None:
            await self._working
