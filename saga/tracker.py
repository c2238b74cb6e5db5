"""Turns per-stage progress reports into one monotonic overall percent and a status."""

from __future__ import annotations

from saga.events import CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING, TERMINAL, Items
from saga.weights import DEFAULT_WEIGHTS, StageWeights


def _percent(value: float) -> float:
    """Clamp to 0-100 and round (not truncate) to two decimals."""
    return round(min(max(value, 0.0), 100.0), 2)


class ProgressTracker:
    """State of one job: status, current stage, stage and overall percent.

    Overall progress only moves forward: a report smaller than an earlier one
    (a stage re-estimating its total, a late message) never moves it back.
    """

    def __init__(self, weights: StageWeights = DEFAULT_WEIGHTS) -> None:
        self.weights = weights
        self.status = QUEUED
        self.stage: str | None = None
        self.stage_progress = 0.0
        self.overall = 0.0
        self.items: Items | None = None
        self.error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def start_stage(self, stage: str) -> None:
        """Enter `stage`; the stages before it count as complete."""
        self._check_active()
        self.weights.span(stage)  # reject unknown stages early, with their name
        self.status, self.stage = RUNNING, stage
        self.stage_progress, self.items = 0.0, None
        self._advance(self.weights.span(stage).start)

    def report(self, done: int, total: int) -> None:
        """`done` of `total` items of the current stage are finished."""
        self._check_active()
        if self.stage is None:
            raise RuntimeError("report before any stage was started")
        fraction = done / total if total > 0 else 0.0
        self.items = Items(done, total)
        self.stage_progress = max(self.stage_progress, _percent(100.0 * fraction))
        self._advance(self.weights.overall(self.stage, fraction))

    def complete_stage(self) -> None:
        """The current stage is done: overall progress is exactly its end percent."""
        self._check_active()
        if self.stage is not None:
            self.stage_progress = 100.0
            self._advance(self.weights.span(self.stage).end)

    def mark_completed(self) -> None:
        self.complete_stage()
        self.overall, self.status = 100.0, COMPLETED

    def mark_failed(self, error: str) -> None:
        self._check_active()
        self.status, self.error = FAILED, error

    def mark_cancelled(self) -> None:
        self._check_active()
        self.status = CANCELLED

    def _advance(self, overall: float) -> None:
        self.overall = max(self.overall, _percent(overall))

    def _check_active(self) -> None:
        if self.finished:
            raise RuntimeError(f"job already {self.status}")
