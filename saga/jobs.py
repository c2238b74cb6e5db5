"""What a job is, how it ended, and where its result goes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

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
    # Overall percent an earlier attempt reached: a retried job's bar continues from there
    # (this run's 0-100 % is spread over the rest) instead of falling back to 0.
    progress_floor: float = 0.0


@dataclass(frozen=True)
class Feasibility:
    """Whether a timetable is complete and breaks no hard constraint. Unplaced lectures
    are hard violations too (the ITC "Lectures" constraint), so `hard_violations >= unplaced`."""

    unplaced: int  # lectures without a period
    lectures: int  # lectures in the instance
    hard_violations: int

    @property
    def feasible(self) -> bool:
        return self.hard_violations == 0

    @staticmethod
    def of(timetable: Timetable, cost: Cost) -> Feasibility:
        return Feasibility(len(timetable.unplaced), timetable.instance.index.n_lectures, cost.hard)

    def as_dict(self) -> dict[str, Any]:
        """The fields every API answer about a finished job carries."""
        return {"feasible": self.feasible, "unplaced": self.unplaced, "hard_violations": self.hard_violations}


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
    # The run that produced it (JobSpec.attempt): a store refuses an older run's result
    # once a newer one has started (app/storage/store.py StaleWrite). Keep it last.
    attempt: int = 1

    @property
    def feasibility(self) -> Feasibility | None:
        """None when the job ended without a timetable."""
        if self.timetable is None or self.cost is None:
            return None
        return Feasibility.of(self.timetable, self.cost)


def feasibility_fields(feasibility: Feasibility | None) -> dict[str, Any]:
    """`feasibility.as_dict()`, or the same keys all null when there is no timetable to judge."""
    if feasibility is None:
        return {"feasible": None, "unplaced": None, "hard_violations": None}
    return feasibility.as_dict()


class ResultSink(Protocol):
    async def save_result(self, outcome: JobOutcome) -> None:
        """Keep the outcome; raise ResultNotSaved when it cannot be kept after all."""
        ...


class ResultNotSaved(Exception):
    """Raised by a ResultSink that gave up keeping an outcome (e.g. the disk stayed full).
    `outcome` is what it kept instead: the job failed, saying why. The runner ends the job
    with it, so the one terminal event tells what the store holds."""

    def __init__(self, outcome: JobOutcome) -> None:
        super().__init__(outcome.error or "the result could not be saved")
        self.outcome = outcome


class CancelResult(enum.Enum):
    REMOVED = "removed"  # was queued; it ended cancelled
    STOPPING = "stopping"  # is running; it will end cancelled
    UNKNOWN = "unknown"  # not active in this runner (finished or never seen)
