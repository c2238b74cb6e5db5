"""solver.pipeline.solve, the one entry point: stages in order, best-so-far on a stop."""

from __future__ import annotations

import threading
import time

from solver.ctt import parse_ctt
from solver.evaluate import evaluate
from solver.generate import generate
from solver.pipeline import SolveOptions, solve
from solver.progress import CPSAT, GA, REFINEMENT, STAGES, Progress
from tests.conftest import CTT_DIR


def test_stages_report_in_order_and_each_hands_on_a_timetable_no_worse() -> None:
    instance = generate(courses=12, rooms=3, curricula=4, seed=3)
    reports: list[Progress] = []
    result = solve(instance, SolveOptions(time_limit=4.0, seed=1), reports.append)
    order = [STAGES.index(r.stage) for r in reports]
    assert order == sorted(order) and set(order) == set(range(len(STAGES)))
    assert result.cost == evaluate(result.timetable) and result.cost.hard == 0 and not result.cancelled
    stage_keys = [result.stage_costs[s].key for s in (CPSAT, GA, REFINEMENT)]
    assert stage_keys == sorted(stage_keys, reverse=True)
    assert reports[-1].best == result.cost and reports[-1].done == reports[-1].total
    improved = [r for r in reports if r.timetable is not None]
    assert improved and all(evaluate(r.timetable) == r.best for r in improved)


def test_a_stop_during_cpsat_returns_promptly_with_what_the_finished_clusters_placed() -> None:
    instance = parse_ctt((CTT_DIR / "instances" / "comp01.ctt").read_text(), "comp01.ctt")
    stop = threading.Event()
    asked: list[float] = []

    def on_progress(report: Progress) -> None:
        # Right after the first cluster is placed: later clusters are still to come.
        if report.stage == CPSAT and report.done == 1 and report.timetable is not None and not stop.is_set():
            asked.append(time.monotonic())
            stop.set()

    result = solve(instance, SolveOptions(time_limit=120.0, seed=0), on_progress, stop.is_set)
    assert asked and time.monotonic() - asked[0] < 2.0
    assert result.cancelled and GA not in result.stage_costs
    cost = evaluate(result.timetable)
    assert cost == result.cost
    unplaced = len(result.timetable.unplaced)
    assert 0 < unplaced < instance.total_lectures
    assert cost.lectures == unplaced and cost.conflicts == cost.room_occupation == cost.availability == 0
