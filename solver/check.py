"""Pre-solve findings in plain words: what makes an instance impossible (errors) or
costly or odd whatever the timetable (warnings). Each error is a necessary condition of
feasibility, so an instance with errors has no timetable without hard violations.

Every finding is one line. A kind of finding that repeats for many courses, rooms,
teachers or curricula becomes one line naming the first few, so a real file gives a
handful of lines, not hundreds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import numpy as np

from solver.errors import counted
from solver.evaluate import MIN_WORKING_DAYS_WEIGHT
from solver.model import Index, Instance

ERROR: Literal["error"] = "error"
WARNING: Literal["warning"] = "warning"

# Lectures the pipeline is known to place within a time budget on one core, as
# (budget in seconds, lectures), ascending: 1,700 lectures in 5 s (tests/test_pipeline.py),
# about 9,000 in 60 s (bench/scale.py, 2026-11-29). Re-measure and update these figures
# here; the budget warning reads nothing else.
KNOWN_LECTURES_PER_BUDGET: tuple[tuple[float, int], ...] = ((5.0, 1_700), (60.0, 9_000))

# More findings of one kind than this become one line naming the first SHOWN_IDS.
COLLAPSE_ABOVE = 3
SHOWN_IDS = 3


@dataclass(frozen=True)
class Finding:
    level: Literal["error", "warning"]
    message: str


@dataclass(frozen=True)
class _Item:
    """One finding about one course, room, teacher or curriculum, before collapsing."""

    id: str
    message: str
    cost: int = 0  # the least soft cost it causes whatever the timetable


def check(instance: Instance, time_limit: float | None = None) -> tuple[Finding, ...]:
    """Errors first, then warnings, each in instance order. With `time_limit` (seconds),
    also warn when the instance is larger than that budget is known to handle."""
    ix = instance.index
    available = ~ix.unavailable  # bool[C, P]
    findings = [
        *_kind(ERROR, _course_periods(ix, available), "courses need more lectures than they have available periods"),
        *_kind(ERROR, _group_periods(ix, available, "Teacher", "teaches", _teacher_groups(ix)),
               "teachers teach more lectures than their courses have available periods"),
        *_kind(ERROR, _group_periods(ix, available, "Curriculum", "has",
                                     zip(ix.curriculum_ids, ix.curriculum_courses)),
               "curricula have more lectures than their courses have available periods"),
        *_room_slots(ix),
        *_budget(ix.n_lectures, time_limit),
        *_kind(WARNING, _empty_rooms(ix), "rooms have capacity 0, so every lecture placed there costs its students"),
        *_kind(WARNING, _oversized_courses(ix),
               f"courses have more students than the largest room holds ({int(ix.capacity.max())} seats)"),
        *_working_days(ix, available),
    ]
    return tuple(sorted(findings, key=lambda f: f.level != ERROR))


def _kind(level: Literal["error", "warning"], items: list[_Item], summary: str) -> list[Finding]:
    """One finding per item, or one line for the lot when they are many. `summary`
    follows the count: "12 " + "courses ask for ...". """
    if len(items) <= COLLAPSE_ABOVE:
        return [Finding(level, item.message) for item in items]
    cost = sum(item.cost for item in items)
    costs = f"; at least {cost:,} cost in all" if cost else ""
    shown = ", ".join(item.id for item in items[:SHOWN_IDS])
    return [Finding(level, f"{len(items)} {summary}{costs}: {shown}, … (+{len(items) - SHOWN_IDS} more).")]


def _course_periods(ix: Index, available: np.ndarray) -> list[_Item]:
    counts = available.sum(axis=1)
    return [
        _Item(ix.course_ids[c],
              f"Course {ix.course_ids[c]} needs {ix.lectures[c]} lectures but only "
              f"{counted(int(counts[c]), 'period')} {'is' if counts[c] == 1 else 'are'} available to it.")
        for c in np.flatnonzero(ix.lectures > counts)
    ]


def _teacher_groups(ix: Index) -> list[tuple[str, tuple[int, ...]]]:
    return [(t, tuple(np.flatnonzero(ix.teacher == i).tolist())) for i, t in enumerate(ix.teacher_ids)]


def _group_periods(ix: Index, available: np.ndarray, noun: str, verb: str,
                   groups: Iterable[tuple[str, Iterable[int]]]) -> list[_Item]:
    """Courses of one teacher or curriculum never share a period, so together they need
    as many distinct periods, each available to the course taught in it."""
    out = []
    for name, members in groups:
        members = list(members)
        if len(members) < 2:  # a single course is covered by the course check
            continue
        need = int(ix.lectures[members].sum())
        periods = int(available[members].any(axis=0).sum())
        if need > periods:
            out.append(_Item(name, f"{noun} {name} {verb} {need} lectures but only {periods} periods "
                                   f"are available to its courses."))
    return out


def _room_slots(ix: Index) -> list[Finding]:
    total = ix.n_lectures
    slots = ix.n_rooms * ix.n_periods
    if total <= slots:
        return []
    return [Finding(ERROR, f"The instance has {total} lectures but only {counted(ix.n_rooms, 'room')} x "
                           f"{ix.n_periods} periods = {slots} room slots.")]


def lectures_within(budget: float) -> float:
    """Lectures the pipeline is known to place within `budget` seconds on one core."""
    budgets, lectures = zip(*KNOWN_LECTURES_PER_BUDGET)
    return _along(budget, budgets, lectures)


def budget_for(lectures: int) -> float:
    """Seconds on one core the pipeline is known to need to place `lectures`."""
    budgets, known = zip(*KNOWN_LECTURES_PER_BUDGET)
    return _along(lectures, known, budgets)


def _along(x: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    """The line through (0, 0) and the known points, continued proportionally past the last:
    there are no measurements beyond it, and proportional is the plain guess."""
    if x >= xs[-1]:
        return ys[-1] * x / xs[-1]
    return float(np.interp(x, [0, *xs], [0, *ys]))


def _budget(lectures: int, time_limit: float | None) -> list[Finding]:
    if time_limit is None or lectures <= lectures_within(time_limit):
        return []
    return [Finding(WARNING, f"This instance has {lectures:,} lectures; a {time_limit:g} s budget is known to "
                             f"place about {round(lectures_within(time_limit)):,} lectures on one core — "
                             f"allow at least {math.ceil(budget_for(lectures))} s.")]


def _empty_rooms(ix: Index) -> list[_Item]:
    return [_Item(ix.room_ids[r], f"Room {ix.room_ids[r]} has capacity 0: every lecture placed there costs "
                                  f"its students.")
            for r in np.flatnonzero(ix.capacity == 0)]


def _oversized_courses(ix: Index) -> list[_Item]:
    largest = int(ix.capacity.max())
    return [
        _Item(ix.course_ids[c],
              f"Course {ix.course_ids[c]} has {ix.students[c]} students but the largest room holds {largest}; "
              f"each of its lectures costs at least {ix.students[c] - largest} (room capacity).",
              int((ix.students[c] - largest) * ix.lectures[c]))
        for c in np.flatnonzero(ix.students > largest)
    ]


def _working_days(ix: Index, available: np.ndarray) -> list[Finding]:
    """A course spreads over at most min(its available days, its lectures) days; each day it
    asks for beyond that costs whatever the timetable. The kind is the first limit it meets."""
    open_days = available.reshape(ix.n_courses, ix.days, ix.periods_per_day).any(axis=2).sum(axis=1)
    week: list[_Item] = []
    closed: list[_Item] = []
    few: list[_Item] = []
    for c in range(ix.n_courses):
        wanted, days, lectures = int(ix.min_days[c]), int(open_days[c]), int(ix.lectures[c])
        short = wanted - min(days, lectures)
        if short <= 0:
            continue
        limits = [f"the week has {ix.days}"] if wanted > ix.days else []
        if days < min(wanted, ix.days):
            limits.append(f"it is available on only {counted(days, 'day')}")
        if lectures < min(wanted, days):
            limits.append(f"it has only {counted(lectures, 'lecture')}")
        cost = short * MIN_WORKING_DAYS_WEIGHT
        item = _Item(ix.course_ids[c], f"Course {ix.course_ids[c]} asks for {wanted} working days but "
                                       f"{' and '.join(limits)}; at least {short} × {MIN_WORKING_DAYS_WEIGHT} = "
                                       f"{cost} cost.", cost)
        (week if wanted > ix.days else closed if days < wanted else few).append(item)
    return [
        *_kind(WARNING, week, "courses ask for more working days than the week has"),
        *_kind(WARNING, closed, "courses ask for more working days than they are available on"),
        *_kind(WARNING, few, "courses ask for more working days than they have lectures"),
    ]
