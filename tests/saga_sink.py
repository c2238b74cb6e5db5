"""A real EventSink + ResultSink for the saga tests and bench: records everything,
in the order it arrived, and lets a test wait for a condition."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Callable

from saga.events import ProgressEvent
from saga.jobs import JobOutcome


class CollectingSink:
    def __init__(self) -> None:
        self.events: dict[str, list[ProgressEvent]] = defaultdict(list)
        self.results: dict[str, JobOutcome] = {}
        self.log: list[tuple[str, str, float]] = []  # (kind, job_id, monotonic time) in arrival order
        self._changed = asyncio.Condition()

    async def publish(self, event: ProgressEvent) -> None:
        await self._record("event", event.job_id, lambda: self.events[event.job_id].append(event))

    async def save_result(self, outcome: JobOutcome) -> None:
        await self._record("result", outcome.job_id, lambda: self.results.__setitem__(outcome.job_id, outcome))

    async def _record(self, kind: str, job_id: str, store: Callable[[], None]) -> None:
        async with self._changed:
            store()
            self.log.append((kind, job_id, time.monotonic()))
            self._changed.notify_all()

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    async def wait_for_event(self, job_id: str, test: Callable[[ProgressEvent], bool], timeout: float = 60.0) -> ProgressEvent:
        await self.wait_for(lambda: any(test(e) for e in self.events[job_id]), timeout)
        return next(e for e in self.events[job_id] if test(e))

    def last(self, job_id: str) -> ProgressEvent:
        return self.events[job_id][-1]
