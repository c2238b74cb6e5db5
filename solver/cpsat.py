"""CP-SAT stage: re-optimise clusters of courses of a complete timetable one after
another, and chosen lectures for the refinement stage."""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Callable, Sequence

from ortools.sat.python import cp_model

from solver.cpsat_model import Placement, build_placement
from solver.evaluate import Cost, evaluate
from solver.model import Instance
from solver.progress import StopCheck, never_stop
from solver.timetable import Timetable

STOP_POLL_SECONDS = 0.05
# Below this, building and solving one cluster's model does not pay.
MIN_CLUSTER_SECONDS = 0.3
# Rooms a course may use in a cluster's model, besides its own: the best-fitting ones.
ROOM_CHOICES = 12


SolutionCallback = Callable[[], None]
# (clusters done, clusters in all, the improved timetable or None, its cost or None)
ClusterCallback = Callable[[int, int, "Timetable | None", "Cost | None"], None]


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
    cost: Cost

    @property
    def soft(self) -> int:
        return self.cost.soft


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
    on_solution: SolutionCallback = _no_report,
) -> Solved | None:
    """Solve a placement model; the best timetable found, or None when there is none."""
    if should_stop() or time_limit <= 0:
        return None
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    if workers <= 1:
        # A lone default worker has no LNS and a weak LP on this model: interleaving the
        # portfolio's subsolvers in one thread, with the full LP, finds placements
        # far more reliably (alone, level 2 found no placement at all for some comp02 clusters).
        solver.parameters.interleave_search = True
        solver.parameters.linearization_level = 2
    with _StopWatcher(solver, should_stop):
        status = solver.solve(placement.model, _SolutionReporter(on_solution, should_stop))
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    timetable = placement.timetable(solver)
    # The evaluator, not objective_value: with interleave_search the reported objective
    # was seen 15 above the returned solution's cost (comp01, half fixed).
    return Solved(timetable, evaluate(timetable))


def lectures_of(instance: Instance, courses: Sequence[int]) -> list[int]:
    fl = instance.index.first_lecture
    return [l for c in courses for l in range(int(fl[c]), int(fl[c + 1]))]


def reoptimize(
    timetable: Timetable,
    free_lectures: Sequence[int],
    *,
    time_limit: float,
    workers: int = 1,
    seed: int = 0,
    should_stop: StopCheck = never_stop,
    room_choices: int | None = None,
    on_solution: SolutionCallback = _no_report,
    cost: Cost | None = None,
) -> Solved | None:
    """Re-place only `free_lectures` (placing those still unplaced), minimising the whole
    soft cost; the new timetable when it is strictly better than `timetable` (whose
    `cost` the caller may already know), else None. Building the model counts against
    `time_limit`."""
    deadline = time.monotonic() + time_limit
    placement = build_placement(timetable, free_lectures, room_choices=room_choices)
    placement.hint(timetable)
    solved = run(placement, time_limit=deadline - time.monotonic(), workers=workers, seed=seed,
                 should_stop=should_stop, on_solution=on_solution)
    before = cost or evaluate(timetable)
    return solved if solved is not None and solved.cost.key < before.key else None


def improve_clusters(
    timetable: Timetable,
    clusters: Sequence[Sequence[int]],
    *,
    time_limit: float,
    workers: int,
    seed: int,
    should_stop: StopCheck,
    on_cluster: ClusterCallback,
) -> Timetable:
    """Re-optimise each cluster's lectures with CP-SAT around the rest of `timetable`, in
    order, each given a share of the time left in proportion to its lectures (so no
    cluster can take the stage's whole budget). A share too short to build and solve a
    model skips the cluster. `on_cluster(done, total, timetable, cost)` follows each cluster
    (the timetable and its cost when the cluster improved it), and each solution CP-SAT
    finds meanwhile (with None)."""
    deadline = time.monotonic() + time_limit
    sizes = [int(timetable.instance.index.lectures[list(cl)].sum()) for cl in clusters]
    cost = evaluate(timetable)
    for i, cluster in enumerate(clusters):
        if should_stop():
            break
        share = max(0.0, deadline - time.monotonic()) * sizes[i] / max(1, sum(sizes[i:]))
        better = None
        if share >= MIN_CLUSTER_SECONDS:
            better = reoptimize(
                timetable,
                lectures_of(timetable.instance, cluster),
                time_limit=share,
                workers=workers,
                seed=seed,
                should_stop=should_stop,
                room_choices=ROOM_CHOICES,
                on_solution=functools.partial(on_cluster, i, len(clusters), None, None),
                cost=cost,
            )
        if better is not None:
            timetable, cost = better.timetable, better.cost
        on_cluster(i + 1, len(clusters), timetable if better else None, cost if better else None)
    return timetable
