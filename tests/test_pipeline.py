"""solver.pipeline.solve, the one entry point: stages in order, best-so-far on a stop."""

from __future__ import annotations

import threading
import time

from solver.ctt import parse_ctt
from solver.evaluate import evaluate
from solver.generate import generate
from solver.pipeline import SolveOptions, solve
from solver.progress import CPSAT, GA, REFINEMENT, STAGES, Progress, cpsat_step
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


def test_a_stop_during_cpsat_returns_promptly_with_the_complete_timetable_built_so_far() -> None:
    instance = parse_ctt((CTT_DIR / "instances" / "comp01.ctt").read_text(), "comp01.ctt")
    stop = threading.Event()
    asked: list[float] = []

    def on_progress(report: Progress) -> None:
        # Once the construction is done and CP-SAT works on the first cluster.
        if report.stage == CPSAT and report.done > report.total // 2 and not stop.is_set():
            asked.append(time.monotonic())
            stop.set()

    result = solve(instance, SolveOptions(time_limit=120.0, seed=0), on_progress, stop.is_set)
    assert asked and time.monotonic() - asked[0] < 2.0
    assert result.cancelled and GA not in result.stage_costs
    assert result.cost == evaluate(result.timetable) and result.cost.hard == 0 and not result.timetable.unplaced


def test_a_university_sized_run_keeps_a_short_budget_places_everything_and_reports_as_it_goes() -> None:
    instance = generate(courses=400, rooms=60, curricula=130, periods_per_day=8, seed=1)
    assert instance.total_lectures >= 1700
    reports: list[Progress] = []
    began = time.monotonic()
    result = solve(instance, SolveOptions(time_limit=5.0, seed=0), reports.append)
    assert time.monotonic() - began < 10.0
    assert result.cost.hard == 0 and not result.timetable.unplaced
    # The CP-SAT stage's share of the bar rises step by step, it does not jump to its end.
    done = [r.done / r.total for r in reports if r.stage == CPSAT]
    assert done == sorted(done) and done[-1] == 1.0
    assert len({d for d in done if 0 < d < 1}) >= 5


def test_cpsat_items_read_as_placing_then_improving() -> None:
    assert cpsat_step(0, 10) == (True, 1, 5)
    assert cpsat_step(4, 10) == (True, 5, 5)
    assert cpsat_step(5, 10) == (False, 1, 5)
    assert cpsat_step(10, 10) == (False, 5, 5)  # finished: the last group stays the one named
