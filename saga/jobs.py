"""What a job is, how it ended, and where its result goes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from solver.evaluate import Cost
from solver.model import Instance
from solver.timetable import Timetable


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    instance: Instance
    time_limit: float
    seed: int = 0
    workers: int = 1
    attempt: int = 1
    first_seq: int = 1  # seq of the job's first event (a retried job continues its log)


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended. A cancelled job carries the best complete timetable found
    (lectures not yet placed are listed as unplaced) and its exact cost."""

    job_id: str
    status: str  # completed | cancelled | failed
    timetable: Timetable | None
    cost: Cost | None
    stage_costs: dict[str, Cost] = field(default_factory=dict)
    error: str | None = None
    finished_at: float = 0.0


class ResultSink(Protocol):
    async def save_result(self, outcome: JobOutcome) -> None: ...


class CancelResult(enum.Enum):
    REMOVED = "removed"  # was queued; it ended cancelled
    STOPPING = "stopping"  # is running; it will end cancelled
    UNKNOWN = "unknown"  # not active in this runner (finished or never seen)
