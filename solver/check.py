"""Pre-solve findings in plain words: what makes an instance impossible (errors) or
costly whatever the timetable (warnings). Each error is a necessary condition of
feasibility, so an instance with errors has no timetable without hard violations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

import numpy as np

from solver.errors import counted
from solver.evaluate import MIN_WORKING_DAYS_WEIGHT
from solver.model import Index, Instance

ERROR: Literal["error"] = "error"
WARNING: Literal["warning"] = "warning"


@dataclass(frozen=True)
class Finding:
    level: Literal["error", "warning"]
    message: str


def check(instance: Instance) -> tuple[Finding, ...]:
    """Errors first, then warnings, each in instance order."""
    ix = instance.index
    available = ~ix.unavailable  # bool[C, P]
    findings = [
        *_course_periods(ix, available),
        *_group_periods(ix, available, "Teacher", "teaches", _teacher_groups(ix)),
        *_group_periods(ix, available, "Curriculum", "has", zip(ix.curriculum_ids, ix.curriculum_courses)),
        *_room_slots(ix),
        *_oversized_courses(ix),
        *_working_days(ix, available),
    ]
    return tuple(sorted(findings, key=lambda f: f.level != ERROR))


def _course_periods(ix: Index, available: np.ndarray) -> list[Finding]:
    counts = available.sum(axis=1)
    return [
        Finding(ERROR, f"Course {ix.course_ids[c]} needs {ix.lectures[c]} lectures but only "
                       f"{counted(int(counts[c]), 'period')} {'is' if counts[c] == 1 else 'are'} available to it.")
        for c in np.flatnonzero(ix.lectures > counts)
    ]


def _teacher_groups(ix: Index) -> list[tuple[str, tuple[int, ...]]]:
    return [(t, tuple(np.flatnonzero(ix.teacher == i).tolist())) for i, t in enumerate(ix.teacher_ids)]


def _group_periods(ix: Index, available: np.ndarray, noun: str, verb: str,
                   groups: Iterable[tuple[str, Iterable[int]]]) -> list[Finding]:
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
            out.append(Finding(ERROR, f"{noun} {name} {verb} {need} lectures but only {periods} periods "
                                      f"are available to its courses."))
    return out


def _room_slots(ix: Index) -> list[Finding]:
    total = ix.n_lectures
    slots = ix.n_rooms * ix.n_periods
    if total <= slots:
        return []
    return [Finding(ERROR, f"The instance has {total} lectures but only {counted(ix.n_rooms, 'room')} x "
                           f"{ix.n_periods} periods = {slots} room slots.")]


def _oversized_courses(ix: Index) -> list[Finding]:
    largest = int(ix.capacity.max())
    return [
        Finding(WARNING, f"Course {ix.course_ids[c]} has {ix.students[c]} students but the largest room "
                         f"holds {largest}; each of its lectures costs at least {ix.students[c] - largest} "
                         f"(room capacity).")
        for c in np.flatnonzero(ix.students > largest)
    ]


def _working_days(ix: Index, available: np.ndarray) -> list[Finding]:
    open_days = available.reshape(ix.n_courses, ix.days, ix.periods_per_day).any(axis=2).sum(axis=1)
    out = []
    for c in range(ix.n_courses):
        wanted, cid = int(ix.min_days[c]), ix.course_ids[c]
        if wanted > open_days[c]:
            out.append(Finding(WARNING, f"Course {cid} should spread over {wanted} days but is available "
                                        f"on only {counted(int(open_days[c]), 'day')}; each missing day costs "
                                        f"{MIN_WORKING_DAYS_WEIGHT}."))
        elif wanted > ix.lectures[c]:
            out.append(Finding(WARNING, f"Course {cid} should spread over {wanted} days but has only "
                                        f"{counted(int(ix.lectures[c]), 'lecture')}; each missing day costs "
                                        f"{MIN_WORKING_DAYS_WEIGHT}."))
    return out
