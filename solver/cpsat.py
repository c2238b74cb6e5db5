"""CP-SAT stage: place clusters of courses one after another, repair what cannot be
placed, and re-optimise chosen lectures for the refinement stage."""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Callable, Sequence

import numpy as np
from ortools.sat.python import cp_model

from solver.cpsat_model import Placement, build_placement
from solver.evaluate import evaluate
from solver.model import Instance
from solver.progress import StopCheck, never_stop
from solver.timetable import Timetable

STOP_POLL_SECONDS = 0.05
# Share of a period's expected demand from clusters still to come that a cluster must
# leave free: placing greedily fills periods, and later clusters then find no room.
RESERVE_FACTOR = 0.9


SolutionCallback = Callable[[], None]


def _no_report() -> None:
    return None


class _SolutionReporter(cp_model.CpSolverSolutionCallback):
    """Tells the caller of every solution CP-SAT finds (live progress within a long
    solve), and stops the search from inside it as soon as a stop is asked for."""

    def __init__(self, on_solution: SolutionCallback, should_stop: StopCheck) -> None:
        super().__init__()
        self._on_solution, self._should_stop = on_solution, should_stop

    def on_solution_callback(self) -> None:
        if self._should_stop():
            self.stop_search()
        self._on_solution()


@dataclass(frozen=True)
class Solved:
    timetable: Timetable
    soft: int


class _StopWatcher:
    """Polls `should_stop` while a solve runs and calls `stop_search` until it returns
    (a call made before the search has started is lost, so it is repeated)."""

    def __init__(self, solver: cp_model.CpSolver, should_stop: StopCheck) -> None:
        self._solver, self._should_stop = solver, should_stop
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cpsat-stop", daemon=True)

    def __enter__(self) -> _StopWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(STOP_POLL_SECONDS):
            if self._should_stop():
                self._solver.stop_search()


def run(
    placement: Placement,
    *,
    time_limit: float,
    workers: int,
    seed: int,
    should_stop: StopCheck,
    first_only: bool = False,
    on_solution: SolutionCallback = _no_report,
) -> Solved | None:
    """Solve a placement model; the best timetable found, or None when there is none.
    With `first_only`, the first placement that meets the hard constraints, found
    without the objective (much faster on tight clusters)."""
    if should_stop() or time_limit <= 0:
        return None
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    if first_only:
        placement.model.clear_objective()
        solver.parameters.stop_after_first_solution = True
    elif workers <= 1:
        # A lone default worker has no LNS and a weak LP on this model: interleaving the
        # portfolio's subsolvers in one thread, with the full LP, finds placements
        # far more reliably (alone, level 2 found no placement at all for some comp02 clusters).
        solver.parameters.interleave_search = True
        solver.parameters.linearization_level = 2
    with _StopWatcher(solver, should_stop):
        status = solver.solve(placement.model, _SolutionReporter(on_solution, should_stop))
    if first_only:
        placement.model.minimize(placement.objective)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    timetable = placement.timetable(solver)
    # The evaluator, not objective_value: with interleave_search the reported objective
    # was seen 15 above the returned solution's cost (comp01, half fixed).
    return Solved(timetable, evaluate(timetable).soft)


def lectures_of(instance: Instance, courses: Sequence[int]) -> list[int]:
    fl = instance.index.first_lecture
    return [l for c in courses for l in range(int(fl[c]), int(fl[c + 1]))]


def place_cluster(
    base: Timetable,
    courses: Sequence[int],
    *,
    time_limit: float,
    workers: int,
    seed: int,
    should_stop: StopCheck,
    period_caps: Sequence[int] | None = None,
    on_solution: SolutionCallback = _no_report,
) -> Timetable | None:
    """Place all lectures of `courses` around what `base` holds, at most `period_caps[p]`
    lectures in period p; None when no placement was found. A first feasible placement
    is found without the objective, then improved from it for the rest of the time."""
    deadline = time.monotonic() + time_limit
    placement = build_placement(base, lectures_of(base.instance, courses), best_fit=True, period_caps=period_caps)
    placement.hint(base)
    solve = functools.partial(run, placement, workers=workers, seed=seed, should_stop=should_stop, on_solution=on_solution)
    first = solve(time_limit=time_limit, first_only=True)
    if first is None:
        return None
    placement.hint(first.timetable)
    best = solve(time_limit=deadline - time.monotonic())
    return best.timetable if best is not None and best.soft <= first.soft else first.timetable


def reoptimize(
    timetable: Timetable,
    free_lectures: Sequence[int],
    *,
    time_limit: float,
    workers: int = 1,
    seed: int = 0,
    should_stop: StopCheck = never_stop,
) -> Timetable | None:
    """Re-place only `free_lectures`, minimising the whole soft cost; the new timetable
    when it is strictly better than `timetable`, else None."""
    placement = build_placement(timetable, free_lectures)
    placement.hint(timetable)
    solved = run(placement, time_limit=time_limit, workers=workers, seed=seed, should_stop=should_stop)
    if solved is None:
        return None
    before, after = evaluate(timetable), evaluate(solved.timetable)
    return solved.timetable if after.key < before.key else None


def solve_clusters(
    instance: Instance,
    clusters: Sequence[Sequence[int]],
    *,
    time_limit: float,
    workers: int,
    seed: int,
    should_stop: StopCheck,
    on_cluster: Callable[[int, int, Timetable | None], None],
) -> Timetable:
    """Place the clusters in order, each given a share of the remaining time in
    proportion to its lectures and leaving room for the clusters after it; a cluster
    that does not fit is placed again without that reserve, then together with already
    placed courses around it. Lectures still unplaced at the deadline stay unplaced.
    `on_cluster(done, total, timetable)` follows each cluster, and each solution CP-SAT
    finds meanwhile (with timetable None)."""
    deadline = time.monotonic() + time_limit
    sizes = [int(instance.index.lectures[list(cl)].sum()) for cl in clusters]
    timetable, placed = Timetable.empty(instance), []
    for i, cluster in enumerate(clusters):
        if should_stop():
            break
        share = max(0.0, deadline - time.monotonic()) * sizes[i] / max(1, sum(sizes[i:]))
        caps = period_caps(instance, [c for later in clusters[i + 1 :] for c in later])
        solving = functools.partial(on_cluster, i, len(clusters), None)
        place = functools.partial(place_cluster, workers=workers, seed=seed, should_stop=should_stop, on_solution=solving)
        new = place(timetable, cluster, time_limit=share, period_caps=caps)
        if new is None:
            new = place(timetable, cluster, time_limit=share)
        if new is None:
            new = _repair(timetable, cluster, placed, deadline=deadline, place=place, should_stop=should_stop)
        if new is not None:
            timetable = new
            placed.extend(cluster)
        on_cluster(i + 1, len(clusters), timetable)
    return timetable


def _repair(
    timetable: Timetable,
    cluster: Sequence[int],
    placed: Sequence[int],
    *,
    deadline: float,
    place: Callable[..., Timetable | None],
    should_stop: StopCheck,
) -> Timetable | None:
    """Free the cluster's placed conflict neighbours with it, then theirs, then every
    placed course (a subset of a feasible instance is feasible, so the last ring finds
    a placement given time)."""
    for ring in _rings(timetable.instance, cluster, placed):
        if should_stop():
            return None
        budget = (deadline - time.monotonic()) / 2
        new = place(timetable, ring, time_limit=budget)
        if new is not None:
            return new
    return None


def period_caps(instance: Instance, later_courses: Sequence[int]) -> list[int]:
    """Rooms per period minus a share of what the later courses are expected to need
    there (each course's lectures spread over its available periods)."""
    ix = instance.index
    demand = np.zeros(ix.n_periods)
    for c in later_courses:
        open_periods = ~ix.unavailable[c]
        demand += open_periods * (ix.lectures[c] / max(1, int(open_periods.sum())))
    return (ix.n_rooms - np.floor(RESERVE_FACTOR * demand)).astype(int).tolist()


def _rings(instance: Instance, cluster: Sequence[int], placed: Sequence[int]) -> list[list[int]]:
    conflict = instance.index.conflict
    ring, rings = set(cluster), []
    candidates = np.zeros(instance.index.n_courses, dtype=bool)
    candidates[list(placed)] = True
    for _ in range(2):
        near = candidates & conflict[sorted(ring)].any(axis=0)
        if not near.any():
            break
        ring |= set(np.flatnonzero(near).tolist())
        candidates &= ~near
        rings.append(sorted(ring))
    rings.append(sorted(set(cluster) | set(placed)))
    return rings
