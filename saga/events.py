"""The progress event a job emits, and the sink Protocol that receives it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol

QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})


@dataclass(frozen=True)
class Items:
    done: int
    total: int


@dataclass(frozen=True)
class Best:
    hard: int
    soft: int


@dataclass(frozen=True)
class ProgressEvent:
    job_id: str
    seq: int  # strictly increasing per job
    status: str  # queued | running | completed | failed | cancelled
    stage: str | None  # one of solver.progress.STAGES, None while queued
    stage_progress: float  # 0-100, two decimals
    overall_progress: float  # 0-100, two decimals, monotonic
    eta_seconds: float | None  # None while unknown, 0 when finished
    started_at: float | None  # unix seconds
    updated_at: float  # unix seconds
    message: str  # plain words for the admin
    items: Items | None = None
    best: Best | None = None
    error: str | None = None  # set when status is failed
    attempt: int = 1
    queue_position: int | None = None  # set while queued
    # Set on a terminal event whose job has a timetable (saga.jobs.Feasibility).
    feasible: bool | None = None
    unplaced: int | None = None
    hard_violations: int | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """The one JSON form of an event: stored in the job's log and sent to SSE clients as it is
        (one line: json.dumps escapes every line break inside strings)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> ProgressEvent:
        return ProgressEvent.from_dict(json.loads(text))

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ProgressEvent:
        items, best = data.get("items"), data.get("best")
        return ProgressEvent(
            **{
                **data,
                "items": Items(**items) if items else None,
                "best": Best(**best) if best else None,
            }
        )


class EventSink(Protocol):
    """Receives every event of every job, in `seq` order per job."""

    async def publish(self, event: ProgressEvent) -> None: ...
