"""Stand-in for solver.pipeline while its stages are written: a real CPU search that
reports the pipeline's stages, budget and best-so-far timetables the same way."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from solver.evaluate import Cost, evaluate
from solver.model import Instance
from solver.progress import CLUSTERING, CPSAT, GA, LOADING, REFINEMENT, Progress, ProgressCallback, StopCheck
from solver.timetable import Timetable

GROUP_COURSES = 4


@dataclass(frozen=True)
class SolveOptions:
    time_limit: float = 60.0
    seed: int = 0
    workers: int = 1


@dataclass(frozen=True)
class SolveResult:
    timetable: Timetable
    cost: Cost
    stage_costs: dict[str, Cost] = field(default_factory=dict)
    cancelled: bool = False
    seconds: float = 0.0


def _search(tt: Timetable, lectures: list[int], until: float, rng: random.Random, stop: StopCheck, report) -> Timetable:
    """Random single-lecture moves, kept when not worse, until `until` or a stop."""
    ix = tt.instance.index
    period, room = list(tt.period), list(tt.room)
    best = evaluate(tt)
    done = 0
    while time.monotonic() < until and not stop():
        l = rng.choice(lectures)
        old = period[l], room[l]
        period[l], room[l] = rng.randrange(ix.n_periods), rng.randrange(ix.n_rooms)
        cost = evaluate(Timetable(tt.instance, tuple(period), tuple(room)))
        if cost.key <= best.key:
            best = cost
            report(done, cost, Timetable(tt.instance, tuple(period), tuple(room)))
        else:
            period[l], room[l] = old
        done += 1
        report(done, best, None)
    return Timetable(tt.instance, tuple(period), tuple(room))


def solve(instance: Instance, options: SolveOptions, on_progress: ProgressCallback, should_stop: StopCheck) -> SolveResult:
    started = time.monotonic()
    rng = random.Random(options.seed)
    tt = Timetable.empty(instance)
    on_progress(Progress(LOADING, 0, 1))
    ix = instance.index
    on_progress(Progress(LOADING, 1, 1))
    on_progress(Progress(CLUSTERING, 0, 1))
    courses = list(range(ix.n_courses))
    groups = [courses[i : i + GROUP_COURSES] for i in range(0, len(courses), GROUP_COURSES)]
    on_progress(Progress(CLUSTERING, 1, 1))
    slice_ = options.time_limit * 0.5 / len(groups)
    for g, group in enumerate(groups):
        if should_stop():
            break
        lectures = [l for c in group for l in range(ix.first_lecture[c], ix.first_lecture[c + 1])]
        tt = _search(tt, lectures, time.monotonic() + slice_, rng, should_stop, lambda d, b, t: None)
        on_progress(Progress(CPSAT, g + 1, len(groups), evaluate(tt), tt))
    all_lectures = list(range(ix.n_lectures))
    for stage, share in ((GA, 0.7), (REFINEMENT, 1.0)):
        if should_stop():
            break
        until = started + options.time_limit * share
        total = max(1, int((until - time.monotonic()) * 300))
        tt = _search(tt, all_lectures, until, rng, should_stop, lambda d, b, t, s=stage, n=total: on_progress(Progress(s, d, max(n, d), b, t)))
    return SolveResult(tt, evaluate(tt), {}, should_stop(), time.monotonic() - started)
