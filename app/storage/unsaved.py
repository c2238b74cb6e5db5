"""Writes the store could not make yet (disk full, database locked, I/O error), kept in
memory in the order they came, so that readers see a job's progress and end before they
are on disk, and the store can retry them in that order.

Bounded per job: a newer progress event supersedes a pending older one (a reader resumes
from the newest anyway), a newer result supersedes an older one; terminal events are kept.
So a job holds at most one progress event, one result and one terminal event here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Union

from app.storage.store import JobHead, JobRecord, ResultSummary, StoredEvent
from saga.events import ProgressEvent
from saga.jobs import JobOutcome

Write = Union[ProgressEvent, JobOutcome]


def _superseded(old: Write, new: Write) -> bool:
    if isinstance(new, JobOutcome):
        return isinstance(old, JobOutcome)
    return isinstance(old, ProgressEvent) and not old.terminal and not new.terminal


class Unsaved:
    """Touched on the event loop only; the store's writer thread gets copies."""

    def __init__(self) -> None:
        self._by_job: dict[str, list[Write]] = {}

    def __len__(self) -> int:
        return sum(len(writes) for writes in self._by_job.values())

    def add(self, write: Write) -> None:
        writes = self._by_job.setdefault(write.job_id, [])
        writes[:] = [w for w in writes if not _superseded(w, write)]
        writes.append(write)

    def has(self, job_id: str) -> bool:
        return job_id in self._by_job

    def jobs(self) -> list[str]:
        return list(self._by_job)

    def of(self, job_id: str) -> list[Write]:
        """The job's pending writes, oldest first (a copy)."""
        return list(self._by_job.get(job_id, ()))

    def written(self, write: Write) -> None:
        """`write` is on disk now (it may have been superseded meanwhile: then nothing to do)."""
        writes = self._by_job.get(write.job_id)
        if writes is None:
            return
        writes[:] = [w for w in writes if w is not write]
        if not writes:
            del self._by_job[write.job_id]

    # What readers see: the stored state with the pending writes laid over it.

    def events(self, job_id: str) -> list[ProgressEvent]:
        return sorted((w for w in self._by_job.get(job_id, ()) if isinstance(w, ProgressEvent)), key=lambda e: e.seq)

    def newest_event(self, job_id: str, stored: ProgressEvent | None) -> ProgressEvent | None:
        pending = self.events(job_id)
        if pending and (stored is None or pending[-1].seq > stored.seq):
            return pending[-1]
        return stored

    def events_after(self, job_id: str, seq: int, stored: list[StoredEvent] | None) -> list[StoredEvent] | None:
        pending = [e for e in self.events(job_id) if e.seq > seq]
        if stored is None or not pending:
            return stored
        known = {e.seq for e in stored}
        kept = [StoredEvent(e.seq, e.status, e.to_json()) for e in pending if e.seq not in known]
        return sorted([*stored, *kept], key=lambda e: e.seq)

    def job(self, record: JobRecord) -> JobRecord:
        """The record as the newest pending event moves it (status, attempt, last_seq)."""
        newest = self.newest_event(record.id, None)
        if newest is None or newest.seq <= record.last_seq:
            return record
        return replace(record, status=newest.status, attempt=newest.attempt, last_seq=newest.seq)

    def head(self, head: JobHead) -> JobHead:
        newest = self.newest_event(head.id, None)
        if newest is None or newest.seq <= head.last_seq:
            return head
        return replace(head, status=newest.status, last_seq=newest.seq)

    def result(self, job_id: str) -> JobOutcome | None:
        outcomes = [w for w in self._by_job.get(job_id, ()) if isinstance(w, JobOutcome)]
        return outcomes[-1] if outcomes else None

    def result_summary(self, job_id: str) -> ResultSummary | None:
        outcome = self.result(job_id)
        if outcome is None:
            return None
        tt = outcome.timetable
        if tt is None:
            return ResultSummary(outcome.status, outcome.cost, None, None)
        return ResultSummary(outcome.status, outcome.cost, len(tt.period), len(tt.unplaced))
