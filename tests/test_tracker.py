"""ProgressTracker and StageWeights: exact stage percents, monotonic overall progress."""

from __future__ import annotations

import pytest

from saga.events import CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING
from saga.tracker import ProgressTracker
from saga.weights import DEFAULT_WEIGHTS, StageWeights
from solver.progress import CLUSTERING, CPSAT, GA, LOADING, REFINEMENT, STAGES


def test_default_map_is_the_documented_one() -> None:
    ends = {s.stage: (s.start, s.end) for s in DEFAULT_WEIGHTS.spans}
    assert ends == {LOADING: (0, 5), CLUSTERING: (5, 15), CPSAT: (15, 75), GA: (75, 90), REFINEMENT: (90, 100)}


def test_each_completed_stage_writes_its_exact_end_percent() -> None:
    t = ProgressTracker()
    assert t.status == QUEUED and t.overall == 0.0
    ends = []
    for stage in STAGES:
        t.start_stage(stage)
        t.report(1, 3)
        t.complete_stage()
        ends.append(t.overall)
    assert ends == [5.0, 15.0, 75.0, 90.0, 100.0]
    t.mark_completed()
    assert t.status == COMPLETED and t.overall == 100.0


def test_cluster_counts_map_into_the_cpsat_span_rounded_not_truncated() -> None:
    t = ProgressTracker()
    t.start_stage(CPSAT)
    t.report(1, 3)  # 15 + 60 / 3 = 35
    assert t.overall == 35.0 and t.stage_progress == 33.33
    t.report(2, 3)  # 15 + 40 = 55; stage 66.666... rounds up
    assert t.overall == 55.0 and t.stage_progress == 66.67
    t.report(1, 7)  # 15 + 60 / 7 = 23.571... (a re-estimated total must not move it back)
    assert t.overall == 55.0 and t.items is not None and t.items.total == 7


def test_overall_never_moves_back_and_stays_in_range() -> None:
    t = ProgressTracker()
    t.start_stage(GA)
    t.report(9, 10)
    high = t.overall
    for done, total in [(1, 10), (0, 0), (-5, 10), (3, 1000)]:
        t.report(done, total)
        assert t.overall == high
    t.report(50, 10)  # more than the total: clamped to the stage end
    assert t.overall == 90.0 and t.stage_progress == 100.0
    t.start_stage(CLUSTERING)  # an earlier stage cannot pull it back either
    assert t.overall == 90.0


def test_terminal_states_are_final_and_keep_their_error() -> None:
    failed = ProgressTracker()
    failed.start_stage(CPSAT)
    failed.mark_failed("The solver process was killed by SIGKILL.")
    assert failed.status == FAILED and failed.error == "The solver process was killed by SIGKILL."
    with pytest.raises(RuntimeError):
        failed.report(1, 2)
    cancelled = ProgressTracker()
    cancelled.start_stage(REFINEMENT)
    assert cancelled.status == RUNNING
    cancelled.mark_cancelled()
    assert cancelled.status == CANCELLED and cancelled.overall == 90.0
    with pytest.raises(RuntimeError):
        cancelled.mark_completed()


def test_custom_weights_are_checked_and_used() -> None:
    weights = StageWeights.from_ends({LOADING: 10, CLUSTERING: 20, CPSAT: 50, GA: 80, REFINEMENT: 100})
    t = ProgressTracker(weights)
    t.start_stage(CPSAT)
    t.report(1, 2)
    assert t.overall == 35.0
    with pytest.raises(ValueError, match="must end at 100"):
        StageWeights.from_ends({LOADING: 10, CPSAT: 90})
    with pytest.raises(KeyError):
        t.start_stage("guessing")
