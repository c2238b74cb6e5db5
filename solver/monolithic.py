"""The plain baseline: one CP-SAT model of the whole problem."""

from __future__ import annotations

from solver.cpsat import run
from solver.cpsat_model import build_placement
from solver.model import Instance
from solver.progress import StopCheck
from solver.timetable import Timetable


def solve_monolithic(instance: Instance, *, time_limit: float, workers: int, seed: int, should_stop: StopCheck) -> Timetable:
    """Every lecture free in a single model; the empty timetable when no solution was found in time."""
    empty = Timetable.empty(instance)
    placement = build_placement(empty, range(instance.index.n_lectures))
    solved = run(placement, time_limit=time_limit, workers=workers, seed=seed, should_stop=should_stop)
    return solved.timetable if solved else empty
