"""Where a worker's runs write: the shared store, fenced by attempt.

A write the store refuses as stale means another worker has taken the job over (this one
lost its claim): the run is stopped and nothing more of it is written. A write the store
cannot make now (Redis away) is kept in memory by the store and delivered when it is back;
the worker keeps solving meanwhile.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from app.storage.store import StaleWrite, Store, StoreUnavailable
from saga.events import ProgressEvent
from saga.jobs import JobOutcome

log = logging.getLogger(__name__)


class StoreSink:
    """The saga runner's EventSink and ResultSink on a worker."""

    def __init__(self, store: Store, stale: Callable[[str], None], lost: Callable[[str], bool] = lambda _: False) -> None:
        self._store = store
        self._stale = stale  # called with the job id when a newer attempt owns the job
        # True for a job whose claim this worker lost. Its run's last writes (the cancelled
        # result and terminal event of the stop) are dropped here, not left to the store's
        # fence: a claim can be lost with no newer attempt to fence them out (Redis restarted
        # from a save older than the claim), and they would then end the job cancelled.
        self._lost = lost

    async def publish(self, event: ProgressEvent) -> None:
        await self._write(event.job_id, lambda: self._store.append_event(event),
                          f"event {event.seq} of attempt {event.attempt}")

    async def save_result(self, outcome: JobOutcome) -> None:
        await self._write(outcome.job_id, lambda: self._store.save_result(outcome), f"result of attempt {outcome.attempt}")

    async def _write(self, job_id: str, write: Callable[[], Awaitable[None]], what: str) -> None:
        if self._lost(job_id):
            return
        try:
            await write()
        except StaleWrite:
            log.warning("job %s: %s refused: a newer attempt owns the job", job_id, what)
            self._stale(job_id)
        except StoreUnavailable:
            pass  # kept and retried by the store; the claim is acked only once it landed
