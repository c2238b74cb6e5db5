"""What the pipeline reports while it works, and how it is told to stop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from solver.evaluate import Cost
from solver.timetable import Timetable

LOADING = "loading"
CLUSTERING = "clustering"
CPSAT = "cpsat_solving"
GA = "ga_optimization"
REFINEMENT = "rl_refinement"
STAGES = (LOADING, CLUSTERING, CPSAT, GA, REFINEMENT)


def cpsat_step(done: int, total: int) -> tuple[bool, int, int]:
    """What the CP-SAT stage's items mean: its first half counts groups of lectures the
    construction has placed, its second half the clusters CP-SAT has re-optimised.
    Returns (still placing, the group at work counted from 1, groups in that half)."""
    half = max(total // 2, 1)
    placing = done < half
    return placing, min(done if placing else done - half, half - 1) + 1, half


@dataclass(frozen=True)
class Progress:
    """`done` of `total` items of `stage` are finished. `best` is the cost of the best
    timetable so far; `timetable` is set only when that best has just improved."""

    stage: str
    done: int
    total: int
    best: Cost | None = None
    timetable: Timetable | None = None


ProgressCallback = Callable[[Progress], None]
StopCheck = Callable[[], bool]
# A search stage's report: (done, total, best cost, best timetable when it just improved).
SearchCallback = Callable[[int, int, Cost, "Timetable | None"], None]


def never_stop() -> bool:
    return False


def ignore_progress(_: Progress) -> None:
    return None


def ignore_search(_done: int, _total: int, _best: Cost, _timetable: Timetable | None) -> None:
    return None
