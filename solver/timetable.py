"""A timetable: every lecture's period and room, and its `.sol`-line form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from solver.model import Instance

UNPLACED = -1


@dataclass(frozen=True)
class Assignment:
    """One `.sol` line: a lecture of `course` in `room` on `day` at `period` of the day."""

    course: str
    room: str
    day: int
    period: int


@dataclass(frozen=True, eq=False)
class Timetable:
    """Lecture `l` (numbered as in `Index`) sits in `period[l]`, `room[l]`; `UNPLACED` in both when it is not placed."""

    instance: Instance
    period: tuple[int, ...]
    room: tuple[int, ...]

    @staticmethod
    def empty(instance: Instance) -> Timetable:
        n = instance.index.n_lectures
        return Timetable(instance, (UNPLACED,) * n, (UNPLACED,) * n)

    @staticmethod
    def from_arrays(instance: Instance, period: Iterable[int], room: Iterable[int]) -> Timetable:
        return Timetable(instance, tuple(int(p) for p in period), tuple(int(r) for r in room))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Writable copies, for search code that mutates them."""
        return np.array(self.period, dtype=np.int64), np.array(self.room, dtype=np.int64)

    @property
    def unplaced(self) -> tuple[int, ...]:
        return tuple(l for l, p in enumerate(self.period) if p == UNPLACED)

    def assignments(self) -> list[Assignment]:
        ix = self.instance.index
        out = []
        for l, (p, r) in enumerate(zip(self.period, self.room)):
            if p == UNPLACED:
                continue
            day, slot = divmod(p, ix.periods_per_day)
            out.append(Assignment(ix.course_ids[ix.lecture_course[l]], ix.room_ids[r], day, slot))
        return out

    @staticmethod
    def from_assignments(instance: Instance, assignments: Iterable[Assignment]) -> Timetable:
        """Keep the lines the official validator keeps (known course and room, day and period
        in range, first line per course and period); lectures beyond a course's count and
        lectures without a line stay unplaced."""
        ix = instance.index
        period = [UNPLACED] * ix.n_lectures
        room = [UNPLACED] * ix.n_lectures
        used = ix.first_lecture[:-1].tolist()
        seen: set[tuple[int, int]] = set()
        for a in assignments:
            c, r = ix.course_pos.get(a.course), ix.room_pos.get(a.room)
            if c is None or r is None or not (0 <= a.day < ix.days and 0 <= a.period < ix.periods_per_day):
                continue
            p = a.day * ix.periods_per_day + a.period
            if (c, p) in seen or used[c] == ix.first_lecture[c + 1]:
                continue
            seen.add((c, p))
            period[used[c]], room[used[c]] = p, r
            used[c] += 1
        return Timetable(instance, tuple(period), tuple(room))
