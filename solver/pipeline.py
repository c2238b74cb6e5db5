"""The one entry point: clustering → construction and per-cluster CP-SAT → GA →
learned local search.

A complete timetable comes first, at any size: a saturation-order construction with
ejection places every lecture (seconds even for thousands), then CP-SAT re-optimises
one small cluster of courses at a time around it. Each stage gets a share of the job's
time budget and hands its timetable to the next; the best timetable seen so far is
what a stop request returns.

A timetable of cost 0 (no hard and no soft violation) cannot be improved: once the best
reaches it, the stage at work winds down at its next stop check and the stages after it
are reported done at once, so a job with optimum 0 ends as soon as it finds one. (The
CP-SAT stage only solves clusters with the rest of the timetable fixed, and with a subset
of the rooms: their bounds prove nothing about the whole, so cost 0 is the only proof.)
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from solver import cluster, cpsat, ga, refine
from solver.construct import feasible_state
from solver.evaluate import Cost, evaluate
from solver.model import Instance
from solver.progress import (
    CLUSTERING,
    CPSAT,
    GA,
    LOADING,
    REFINEMENT,
    STAGES,
    Progress,
    ProgressCallback,
    StopCheck,
    ignore_progress,
    never_stop,
)
from solver.timetable import Timetable

# Share of the time budget per search stage; refinement gets what is left.
CPSAT_SHARE = 0.05
GA_SHARE = 0.1  # as long as the refinement's probe, which the GA's founders stand in for
# Lectures per cluster: small enough that each cluster's model builds and solves in
# seconds whatever the instance's size (the count of clusters grows with it instead).
CLUSTER_LECTURES = 60


@dataclass(frozen=True)
class SolveOptions:
    time_limit: float = 60.0
    seed: int = 0
    workers: int = 1
    # Search stages to leave out (CPSAT, GA, REFINEMENT), for the ablation bench: a left-out
    # stage hands its input on and its time to the next (the last one's to the one before).
    # Without CP-SAT the construction alone makes the first complete timetable.
    skip: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SolveResult:
    timetable: Timetable
    cost: Cost
    stage_costs: dict[str, Cost] = field(default_factory=dict)
    cancelled: bool = False
    seconds: float = 0.0
    moves: refine.MoveStats | None = None  # the refinement's moves, when it ran


class _Best:
    """The best timetable so far, and the reporting of its improvements."""

    def __init__(self, instance: Instance, on_progress: ProgressCallback) -> None:
        self.timetable = Timetable.empty(instance)
        self.cost = evaluate(self.timetable)
        self._on_progress = on_progress
        self.items = (0, 0)

    @property
    def optimal(self) -> bool:
        """Cost 0: nothing can improve on this timetable."""
        return self.cost.hard == 0 and self.cost.soft == 0

    def offer(self, timetable: Timetable, cost: Cost | None = None) -> bool:
        cost = cost or evaluate(timetable)
        if cost.key >= self.cost.key:
            return False
        self.timetable, self.cost = timetable, cost
        return True

    def report(self, stage: str, done: int, total: int, improved: Timetable | None = None, cost: Cost | None = None) -> None:
        better = improved is not None and self.offer(improved, cost)
        self.items = (done, total)
        self._on_progress(Progress(stage, done, total, self.cost, self.timetable if better else None))


def solve(
    instance: Instance,
    options: SolveOptions = SolveOptions(),
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCheck = never_stop,
) -> SolveResult:
    started = time.monotonic()
    deadline = started + options.time_limit
    best = _Best(instance, on_progress)
    stage_costs: dict[str, Cost] = {}

    def remaining() -> float:
        return max(0.0, deadline - time.monotonic())

    moves: list[refine.MoveStats] = []

    def finish() -> SolveResult:
        return SolveResult(best.timetable, best.cost, stage_costs, should_stop(), time.monotonic() - started,
                           moves[0] if moves else None)

    def stage_over() -> bool:
        """A stage's stop check: a stop request, or a best that cannot improve."""
        return should_stop() or best.optimal

    def finish_early(stage: str) -> SolveResult:
        """The best is optimal after `stage`: the stages after it are skipped, reported done at once
        (in order, so progress still ends at 100 %), each handing on the best unchanged."""
        for skipped in STAGES[STAGES.index(stage) + 1:]:
            if skipped in (CPSAT, GA, REFINEMENT):
                stage_costs[skipped] = best.cost
            best.report(skipped, 1, 1)
        return finish()

    best.report(LOADING, 0, 1)
    instance.index  # building the index is the loading work
    best.report(LOADING, 1, 1)

    best.report(CLUSTERING, 0, 1)
    clusters = cluster.cluster_courses(instance, max_lectures=CLUSTER_LECTURES, seed=options.seed)
    best.report(CLUSTERING, 1, 1)
    if best.optimal:  # no lecture at all
        return finish_early(CLUSTERING)

    # Items of the CP-SAT stage: groups of lectures, first placed, then re-optimised.
    groups = len(clusters)
    best.report(CPSAT, 0, 2 * groups)
    skip = options.skip
    stage_deadline = started + options.time_limit * CPSAT_SHARE

    def placed(done: int, total: int) -> None:
        best.report(CPSAT, done * groups // max(total, 1), 2 * groups)

    constructed = feasible_state(
        Timetable.empty(instance), random.Random(options.seed), stage_deadline, stage_over, placed
    ).to_timetable()
    best.report(CPSAT, groups, 2 * groups, constructed)
    improved = constructed if CPSAT in skip else cpsat.improve_clusters(
        constructed,
        clusters,
        time_limit=max(0.0, stage_deadline - time.monotonic()),
        workers=options.workers,
        seed=options.seed,
        should_stop=stage_over,
        on_cluster=lambda done, total, tt, cost: best.report(CPSAT, groups + done, 2 * groups, tt, cost),
    )
    stage_costs[CPSAT] = evaluate(improved)
    best.offer(improved, stage_costs[CPSAT])
    if should_stop():
        return finish()
    if best.optimal:
        return finish_early(CPSAT)

    best.report(GA, 0, 1)  # the stage begins even if it finds nothing to evolve
    ga_share = GA_SHARE + (CPSAT_SHARE if CPSAT in skip else 0.0)
    ga_time = remaining() if REFINEMENT in skip else min(remaining(), options.time_limit * ga_share)
    evolved = best.timetable if GA in skip else ga.evolve(
        best.timetable,
        time_limit=ga_time,
        seed=options.seed,
        workers=options.workers,
        should_stop=stage_over,
        on_generation=lambda done, total, cost, tt: best.report(GA, done, total, tt, cost if tt is not None else None),
    )
    best.offer(evolved)
    stage_costs[GA] = best.cost
    if should_stop():
        return finish()
    if best.optimal:
        return finish_early(GA)

    refined = refine.refine(
        best.timetable,
        time_limit=0.0 if REFINEMENT in skip else remaining(),
        seed=options.seed,
        workers=options.workers,
        should_stop=stage_over,
        # As hot as the timetable CP-SAT handed on calls for (and the time allows), whether or
        # not the GA ran: the GA's timetable, cheaper but quenched by short anneals, made for a
        # cooler start and a worse end (comp02, 300 s on two cores: 43.3 against 36.0 without it).
        heat_from=stage_costs[CPSAT].soft,
        probe=GA in skip,  # the GA's founders probed already
        on_iteration=lambda done, total, cost, tt: best.report(REFINEMENT, done, total, tt, cost if tt is not None else None),
    )
    best.offer(refined.timetable)
    moves.append(refined.moves)
    stage_costs[REFINEMENT] = best.cost
    if not should_stop():
        iterations = best.items[0]
        best.report(REFINEMENT, iterations, iterations)
    return finish()
