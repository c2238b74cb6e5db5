"""solver.pipeline.solve, the one entry point: stages in order, best-so-far on a stop."""

from __future__ import annotations

import random
import threading
import time

import pytest

from solver.construct import feasible_state
from solver.ctt import parse_ctt
from solver.evaluate import Cost, evaluate
from solver.generate import generate
from solver.pipeline import SolveOptions, solve
from solver.progress import CPSAT, GA, REFINEMENT, STAGES, Progress, cpsat_step
from solver.timetable import Timetable
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


# Optimum 0, reached by every stage within a second or so; the construction alone leaves 37.
ZERO_OPTIMUM = dict(courses=8, rooms=2, curricula=3, seed=1)


def _solve_to_zero(skip: tuple[str, ...]) -> None:
    """A 30 s job whose optimum is 0 ends as soon as cost 0 is reported, with the stages
    after the one that found it reported done at once, in order, up to 100 %.
    `skip` names stages (CPSAT, GA) left out as the ablation leaves them out, so that the stage
    after them is the one to find cost 0 (without the GA, the refinement probes first)."""
    reports: list[Progress] = []
    zero_at: list[float] = []

    def on_progress(report: Progress) -> None:
        reports.append(report)
        if report.best == Cost() and not zero_at:
            zero_at.append(time.monotonic())

    began = time.monotonic()
    options = SolveOptions(time_limit=30.0, seed=0, skip=frozenset(skip))
    result = solve(generate(**ZERO_OPTIMUM), options, on_progress)
    ended = time.monotonic()
    assert result.cost == Cost() == evaluate(result.timetable) and not result.cancelled
    assert ended - began < 5.0 and zero_at and ended - zero_at[0] <= 1.0
    order = [STAGES.index(r.stage) for r in reports]
    assert order == sorted(order) and set(order) == set(range(len(STAGES)))
    assert reports[-1].best == Cost() and reports[-1].done == reports[-1].total
    assert [result.stage_costs[s] for s in (CPSAT, GA, REFINEMENT)][len(skip):] == [Cost()] * (3 - len(skip))


def test_a_job_whose_optimum_is_0_ends_within_a_second_of_reaching_it() -> None:
    _solve_to_zero(())


@pytest.mark.parametrize("skip", [(CPSAT,), (CPSAT, GA)], ids=["found-by-ga", "found-by-refinement"])
def test_cost_0_found_by_a_later_stage_ends_the_job_as_well(skip: tuple[str, ...]) -> None:
    _solve_to_zero(skip)


def test_refinement_moves_come_back_with_the_result() -> None:
    result = solve(generate(courses=12, rooms=3, curricula=4, seed=3), SolveOptions(time_limit=3.0, seed=1))
    moves = result.moves
    assert moves is not None and 0 < moves.accepted <= moves.proposed and moves.seconds > 0


@pytest.mark.parametrize("left_out", [CPSAT, GA, REFINEMENT])
def test_a_left_out_stage_hands_its_input_on(left_out: str) -> None:
    """The ablation bench's variants: a stage in `skip` changes nothing and costs no time."""
    instance = generate(courses=12, rooms=3, curricula=4, seed=3)
    result = solve(instance, SolveOptions(time_limit=2.0, seed=1, skip=frozenset({left_out})))
    costs = result.stage_costs
    assert result.cost.hard == 0 and result.seconds < 3.0
    if left_out == CPSAT:  # the construction's timetable, untouched by CP-SAT
        constructed = feasible_state(Timetable.empty(instance), random.Random(1), time.monotonic() + 5, lambda: False)
        assert costs[CPSAT] == constructed.cost()
    if left_out == GA:
        assert costs[GA] == costs[CPSAT]
    if left_out == REFINEMENT:
        assert costs[REFINEMENT] == costs[GA] and result.moves is not None and result.moves.proposed == 0
