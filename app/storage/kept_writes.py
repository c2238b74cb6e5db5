"""The writes a store could not make yet, and the task that retries them: shared by every
backend, so that SQLite's full disk and Redis's outage behave alike.

An event or a result the store refuses (StoreUnavailable) is kept in memory
(app/storage/unsaved.py): readers see it at once, the caller gets the StoreUnavailable,
and a retry task writes the kept writes, in order, backing off from RETRY_FIRST to
RETRY_MAX, until they land. A job that has kept writes queues its new ones behind them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from app.storage.store import RETRY_FIRST, RETRY_MAX, StoreUnavailable
from app.storage.unsaved import Unsaved, Write

log = logging.getLogger(__name__)


class KeptWrites:
    """Touched on the event loop only. `write` makes one write for good, or raises
    StoreUnavailable (kept, retried) or anything else (it can never land: dropped);
    `open` says whether the store still takes writes at all (False once closed)."""

    def __init__(self, write: Callable[[Write], Awaitable[None]], open: Callable[[], bool]) -> None:
        self._write, self._open = write, open
        self.unsaved = Unsaved()  # what readers lay over the stored state
        self._flushing = asyncio.Lock()  # kept writes go out in order, one flush at a time
        self._retrying: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self.unsaved)

    async def write(self, write: Write) -> None:
        """Write now; when the store refuses, keep the write in memory (readers see it from
        then on) for the retry task, and raise the StoreUnavailable."""
        if not self.unsaved.has(write.job_id):
            try:
                await self._write(write)
                return
            except StoreUnavailable:
                self.unsaved.add(write)
                self._retry_later()
                raise
        self.unsaved.add(write)
        try:
            await self._flush(write.job_id)
        except StoreUnavailable:
            self._retry_later()
            raise

    async def _flush(self, job_id: str) -> None:
        async with self._flushing:
            for write in self.unsaved.of(job_id):
                try:
                    await self._write(write)
                except StoreUnavailable:
                    raise  # kept, for the retry
                except Exception:  # it can never land (or, a duplicate, it did): it must not hold back the rest
                    self.unsaved.written(write)
                    raise
                self.unsaved.written(write)

    async def landed(self, job_id: str) -> None:
        """Return once nothing of `job_id` is kept any more: written, or dropped as a write
        that can never land. Tries now, then backs off while the store refuses."""
        delay = RETRY_FIRST
        while self.unsaved.has(job_id):
            try:
                await self._flush(job_id)
            except StoreUnavailable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
            except Exception:  # dropped by _flush; the rest goes on
                log.exception("store: a kept write of job %s could not be stored and is dropped", job_id)

    async def flush_all(self) -> None:
        for job_id in self.unsaved.jobs():
            await self._flush(job_id)

    async def problem(self) -> str | None:
        """Kept writes are tried now; None once none is left, else why they are still kept."""
        if self.unsaved:
            try:
                await self.flush_all()
            except StoreUnavailable as err:
                return f"{len(self.unsaved)} writes are kept in memory: {err.reason}"
        return None

    def _retry_later(self) -> None:
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.get_running_loop().create_task(self._retry(), name="store-retry")

    async def _retry(self) -> None:
        """Write the kept writes again, job by job, backing off while the store refuses."""
        delay = RETRY_FIRST
        while self.unsaved and self._open():
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
            try:
                await self.flush_all()
            except StoreUnavailable:
                continue
            except Exception:  # that write can never land and is dropped (see _flush); go on with the rest
                log.exception("store: a kept write could not be stored and is dropped")
        if not self.unsaved:
            log.warning("store: every kept write is stored now")

    async def close(self, failing: str | None) -> None:
        """Stop retrying; what is still kept is lost, and said so."""
        if self._retrying is not None:
            self._retrying.cancel()
            await asyncio.gather(self._retrying, return_exceptions=True)
        if self.unsaved:
            log.error("store: closing with %d writes not stored (%s)", len(self.unsaved), failing)
