"""The ITC-2007 track 3 cost function (UD2), as the official validator computes it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from solver.model import Instance
from solver.timetable import Assignment, Timetable

MIN_WORKING_DAYS_WEIGHT = 5
COMPACTNESS_WEIGHT = 2
HARD = ("lectures", "conflicts", "availability", "room_occupation")
SOFT = ("room_capacity", "min_working_days", "curriculum_compactness", "room_stability")


@dataclass(frozen=True)
class Cost:
    """Violations per hard constraint and weighted cost per soft constraint."""

    lectures: int = 0
    conflicts: int = 0
    availability: int = 0
    room_occupation: int = 0
    room_capacity: int = 0
    min_working_days: int = 0
    curriculum_compactness: int = 0
    room_stability: int = 0

    @property
    def hard(self) -> int:
        return self.lectures + self.conflicts + self.availability + self.room_occupation

    @property
    def soft(self) -> int:
        return self.room_capacity + self.min_working_days + self.curriculum_compactness + self.room_stability

    @property
    def key(self) -> tuple[int, int]:
        """Order of quality: fewer hard violations first, then lower soft cost."""
        return (self.hard, self.soft)

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "hard": self.hard, "soft": self.soft}


def course_period_table(timetable: Timetable) -> np.ndarray:
    """`tt[course, period] = room`, -1 where the course has no lecture (the validator's table)."""
    ix = timetable.instance.index
    tt = np.full((ix.n_courses, ix.n_periods), -1, dtype=np.int64)
    for l, (p, r) in enumerate(zip(timetable.period, timetable.room)):
        if p >= 0 and tt[ix.lecture_course[l], p] < 0:
            tt[ix.lecture_course[l], p] = r
    return tt


def evaluate_assignments(instance: Instance, assignments: Iterable[Assignment]) -> Cost:
    """Evaluate `.sol` lines as the validator reads them: unknown course or room and
    day or period out of range are skipped, the first line per course and period wins,
    and a course may have more lectures than it needs (a Lectures violation)."""
    ix = instance.index
    tt = np.full((ix.n_courses, ix.n_periods), -1, dtype=np.int64)
    for a in assignments:
        c, r = ix.course_pos.get(a.course), ix.room_pos.get(a.room)
        if c is None or r is None or not (0 <= a.day < ix.days and 0 <= a.period < ix.periods_per_day):
            continue
        p = a.day * ix.periods_per_day + a.period
        if tt[c, p] < 0:
            tt[c, p] = r
    return evaluate_table(instance, tt)


def evaluate(timetable: Timetable) -> Cost:
    return evaluate_table(timetable.instance, course_period_table(timetable))


def evaluate_table(instance: Instance, tt: np.ndarray) -> Cost:
    """Cost of the validator's table `tt[course, period] = room` (-1: no lecture)."""
    ix = instance.index
    busy = tt >= 0  # bool[C, P]

    lectures = int(np.abs(busy.sum(axis=1) - ix.lectures).sum())
    # Each unordered conflicting pair counts once per shared period. A float product runs
    # on BLAS (an integer one does not) and is exact: every entry is at most the periods.
    as_float = busy.astype(np.float32)
    both = as_float @ as_float.T
    conflicts = int(round(float(np.triu(both * ix.conflict, k=1).sum(dtype=np.float64))))
    availability = int((busy & ix.unavailable).sum())
    c_idx, p_idx = np.nonzero(busy)
    per_room_period = np.bincount(tt[c_idx, p_idx] * ix.n_periods + p_idx, minlength=ix.n_rooms * ix.n_periods)
    room_occupation = int(np.maximum(per_room_period - 1, 0).sum())

    capacity, working_days, stability = course_costs(instance, tt)

    return Cost(
        lectures=lectures,
        conflicts=conflicts,
        availability=availability,
        room_occupation=room_occupation,
        room_capacity=int(capacity.sum()),
        min_working_days=int(working_days.sum()),
        curriculum_compactness=COMPACTNESS_WEIGHT * isolated_lectures(busy, ix.curriculum_courses, ix.periods_per_day),
        room_stability=int(stability.sum()),
    )


def course_costs(instance: Instance, tt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per course, of the table `tt[course, period] = room`: room capacity, minimum working days
    (weighted) and room stability cost."""
    ix = instance.index
    busy = tt >= 0
    c_idx, p_idx = np.nonzero(busy)
    capacity = np.bincount(c_idx, weights=ix.capacity_penalty[c_idx, tt[c_idx, p_idx]], minlength=ix.n_courses)
    days_used = busy.reshape(ix.n_courses, ix.days, ix.periods_per_day).any(axis=2).sum(axis=1)
    working_days = MIN_WORKING_DAYS_WEIGHT * np.maximum(ix.min_days - days_used, 0)
    stability = np.array([max(len(set(tt[c][busy[c]].tolist())) - 1, 0) for c in range(ix.n_courses)], dtype=np.int64)
    return capacity.astype(np.int64), working_days, stability


def curriculum_costs(timetable: Timetable) -> np.ndarray:
    """Each curriculum's part of the soft cost: its isolated lectures and its courses' own costs
    (a course in several curricula counts in each), for the GA to tell which parent serves a
    curriculum better."""
    ix = timetable.instance.index
    tt = course_period_table(timetable)
    per_course = sum(course_costs(timetable.instance, tt))
    isolated = isolated_per_curriculum(tt >= 0, ix.curriculum_courses, ix.periods_per_day)
    return COMPACTNESS_WEIGHT * isolated + np.array([per_course[list(q)].sum() for q in ix.curriculum_courses],
                                                    dtype=np.int64)


def isolated_lectures(busy: np.ndarray, curricula: tuple[tuple[int, ...], ...], periods_per_day: int) -> int:
    return int(isolated_per_curriculum(busy, curricula, periods_per_day).sum())


def isolated_per_curriculum(busy: np.ndarray, curricula: tuple[tuple[int, ...], ...], periods_per_day: int) -> np.ndarray:
    """Isolated lectures per curriculum, by the validator's test, literally: the first period of
    a day looks at the next one, the last at the previous one, any period at both neighbours
    (out of range counts as empty)."""
    n_periods = busy.shape[1]
    slot = np.arange(n_periods) % periods_per_day
    totals = np.zeros(len(curricula), dtype=np.int64)
    for q, members in enumerate(curricula):
        count = busy[list(members)].sum(axis=0)
        has = count > 0
        nxt = np.concatenate((has[1:], [False]))
        prv = np.concatenate(([False], has[:-1]))
        isolated = ((slot == 0) & ~nxt) | ((slot == periods_per_day - 1) & ~prv) | (~nxt & ~prv)
        totals[q] = int(count[has & isolated].sum())
    return totals
