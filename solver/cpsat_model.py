"""The CP-SAT placement model shared by every CP-SAT entry point.

Some lectures are *free*: they are placed into (period, room); every other lecture of
the base timetable stays where it is. Hard constraints are model constraints; the
objective is the exact UD2 soft cost, so `objective + offset == evaluate(result).soft`.

Formulation: `x[c, p]` (course c teaches in period p) and `z[c, p, r]` (in room r),
with `sum_r z[c, p, r] == x[c, p]`. Periods a free course cannot use (unavailable,
taken by its own or a conflicting fixed lecture, no free room) get no variable.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from ortools.sat.python import cp_model

from solver.evaluate import COMPACTNESS_WEIGHT, MIN_WORKING_DAYS_WEIGHT, course_period_table, evaluate, isolated_lectures
from solver.model import Index
from solver.timetable import UNPLACED, Timetable

Slot = tuple[int, int]  # (period, room)


@dataclass(frozen=True, eq=False)
class Placement:
    """A built model and the means to read its solutions back as timetables."""

    model: cp_model.CpModel
    fixed: Timetable  # the base with the free lectures unplaced
    free_of: dict[int, tuple[int, ...]]  # free course -> its free lectures
    x: dict[int, dict[int, cp_model.IntVar]]  # course -> period -> var
    z: dict[int, dict[Slot, cp_model.IntVar]]  # course -> (period, room) -> var
    constant_curricula: tuple[int, ...]  # curricula without a free course: outside the objective
    objective: cp_model.LinearExprT

    def timetable(self, solver: cp_model.CpSolver) -> Timetable:
        period, room = self.fixed.arrays()
        for c, lectures in self.free_of.items():
            chosen = sorted(slot for slot, var in self.z[c].items() if solver.boolean_value(var))
            for l, (p, r) in zip(lectures, chosen):
                period[l], room[l] = p, r
        return Timetable.from_arrays(self.fixed.instance, period, room)

    def soft(self, solver: cp_model.CpSolver) -> int:
        """The solution's soft cost from the objective (computed on demand: it costs an evaluation)."""
        return round(solver.objective_value) + _offset(self.fixed, list(self.free_of), self.constant_curricula)

    def hint(self, timetable: Timetable) -> None:
        """Replace any earlier hint: suggest the free lectures' positions in `timetable` as the first solution
        (courses with an unplaced lecture get no hint: an all-zero hint misleads the search)."""
        self.model.clear_hints()
        for c, lectures in self.free_of.items():
            used = {(timetable.period[l], timetable.room[l]) for l in lectures}
            if UNPLACED in {p for p, _ in used}:
                continue
            for slot, var in self.z[c].items():
                self.model.add_hint(var, slot in used)
            periods = {p for p, _ in used}
            for p, var in self.x[c].items():
                self.model.add_hint(var, p in periods)


def build_placement(base: Timetable, free_lectures: Sequence[int], *, room_choices: int | None = None) -> Placement:
    """The model placing `free_lectures` around the rest of `base`. With `room_choices`,
    each free course may use only that many of its best-fitting rooms (and the rooms it
    has in `base`): the model then grows with the lectures, not with lectures × rooms."""
    ix = base.instance.index
    period, room = base.arrays()
    free = np.unique(np.asarray(free_lectures, dtype=np.int64))
    rooms_held = {int(ix.lecture_course[l]): set() for l in free.tolist()}
    for l in free.tolist():
        if room[l] != UNPLACED:
            rooms_held[int(ix.lecture_course[l])].add(int(room[l]))
    period[free], room[free] = UNPLACED, UNPLACED
    fixed = Timetable.from_arrays(base.instance, period, room)
    free_of: dict[int, list[int]] = defaultdict(list)
    for l in free.tolist():
        free_of[int(ix.lecture_course[l])].append(l)
    allowed = None if room_choices is None else {c: _room_choice(ix, c, room_choices) | held for c, held in rooms_held.items()}
    builder = _Builder(fixed, {c: len(ls) for c, ls in free_of.items()}, allowed)
    objective = builder.build()
    builder.model.minimize(objective)
    return Placement(
        model=builder.model,
        fixed=fixed,
        free_of={c: tuple(ls) for c, ls in free_of.items()},
        x=builder.x,
        z=builder.z,
        constant_curricula=tuple(builder.constant_curricula),
        objective=objective,
    )


def _room_choice(ix: Index, c: int, count: int) -> set[int]:
    """The `count` rooms that fit course c best (`Index.room_fit`)."""
    return set(np.argsort(ix.room_fit[c], kind="stable")[:count].tolist())


def _offset(fixed: Timetable, free_courses: list[int], constant_curricula: Sequence[int]) -> int:
    """Soft cost of what the objective does not cover: evaluate the timetable without any
    lecture of a free course, and take out what those absent courses add there (their
    full min-working-days penalty); compactness only of the curricula without a free course."""
    ix = fixed.instance.index
    period, room = fixed.arrays()
    drop = np.isin(ix.lecture_course, free_courses)
    period[drop], room[drop] = UNPLACED, UNPLACED
    cost = evaluate(Timetable.from_arrays(fixed.instance, period, room))
    absent_days = MIN_WORKING_DAYS_WEIGHT * int(ix.min_days[free_courses].sum())
    busy = course_period_table(fixed) >= 0
    constant = [ix.curriculum_courses[q] for q in constant_curricula]
    compactness = COMPACTNESS_WEIGHT * isolated_lectures(busy, tuple(constant), ix.periods_per_day)
    return cost.room_capacity + cost.room_stability + cost.min_working_days - absent_days + compactness


class _Builder:
    def __init__(self, fixed: Timetable, counts: dict[int, int], allowed_rooms: dict[int, set[int]] | None) -> None:
        self.ix = ix = fixed.instance.index
        self.model = cp_model.CpModel()
        self.counts = counts
        self.allowed_rooms = allowed_rooms
        self.constant_curricula: list[int] = []
        self.course_busy = np.zeros((ix.n_courses, ix.n_periods), dtype=bool)
        self.room_busy = np.zeros((ix.n_periods, ix.n_rooms), dtype=bool)
        self.fixed_slots: dict[int, list[Slot]] = defaultdict(list)
        for l, (p, r) in enumerate(zip(fixed.period, fixed.room)):
            if p != UNPLACED:
                c = int(ix.lecture_course[l])
                self.course_busy[c, p] = self.room_busy[p, r] = True
                self.fixed_slots[c].append((p, r))
        self.x: dict[int, dict[int, cp_model.IntVar]] = {}
        self.z: dict[int, dict[Slot, cp_model.IntVar]] = {}

    def build(self) -> cp_model.LinearExprT:
        for c in self.counts:
            self._course_vars(c)
        self._conflicts()
        self._rooms()
        terms: list[cp_model.LinearExprT] = []
        for c in self.counts:
            terms += [self._capacity(c), self._working_days(c), self._stability(c)]
        for q, members in enumerate(self.ix.curriculum_courses):
            if any(c in self.counts for c in members):
                terms.append(self._compactness(members))
            else:  # nothing in it can move: its cost is a constant, counted in the offset
                self.constant_curricula.append(q)
        return sum(terms)

    def _course_vars(self, c: int) -> None:
        ix, m = self.ix, self.model
        blocked = ix.unavailable[c] | self.course_busy[c] | self.course_busy[ix.conflict[c]].any(axis=0)
        open_rooms = ~self.room_busy
        if self.allowed_rooms is not None:
            open_rooms = open_rooms & np.isin(np.arange(ix.n_rooms), list(self.allowed_rooms[c]))[None, :]
        self.x[c], self.z[c] = {}, {}
        for p in np.flatnonzero(~blocked).tolist():
            rooms = np.flatnonzero(open_rooms[p]).tolist()
            if not rooms:
                continue
            xv = self.x[c][p] = m.new_bool_var(f"x{c}_{p}")
            zs = [m.new_bool_var(f"z{c}_{p}_{r}") for r in rooms]
            self.z[c].update(((p, r), zv) for r, zv in zip(rooms, zs))
            m.add(sum(zs) == xv)
        m.add(sum(self.x[c].values()) == self.counts[c])

    def _conflicts(self) -> None:
        """Conflicts are the union of cliques (one per curriculum, one per teacher)."""
        groups = [list(members) for members in self.ix.curriculum_courses]
        by_teacher: dict[int, list[int]] = defaultdict(list)
        for c in self.counts:
            by_teacher[int(self.ix.teacher[c])].append(c)
        groups += list(by_teacher.values())
        for members in groups:
            free = [c for c in members if c in self.counts]
            if len(free) < 2:
                continue
            for p in range(self.ix.n_periods):
                vs = [self.x[c][p] for c in free if p in self.x[c]]
                if len(vs) > 1:
                    self.model.add_at_most_one(vs)

    def _rooms(self) -> None:
        per_slot: dict[Slot, list[cp_model.IntVar]] = defaultdict(list)
        per_period: dict[int, list[cp_model.IntVar]] = defaultdict(list)
        for c in self.counts:
            for slot, var in self.z[c].items():
                per_slot[slot].append(var)
            for p, var in self.x[c].items():
                per_period[p].append(var)
        for vs in per_slot.values():
            if len(vs) > 1:
                self.model.add_at_most_one(vs)
        # No more lectures in a period than free rooms (redundant, it prunes early).
        for p, vs in per_period.items():
            limit = int((~self.room_busy[p]).sum())
            if len(vs) > limit:
                self.model.add(sum(vs) <= limit)

    def _capacity(self, c: int) -> cp_model.LinearExprT:
        penalty = self.ix.capacity_penalty[c]
        fixed = sum(int(penalty[r]) for _, r in self.fixed_slots[c])
        return fixed + sum(int(penalty[r]) * v for (_, r), v in self.z[c].items() if penalty[r])

    def _working_days(self, c: int) -> cp_model.LinearExprT:
        ix, m = self.ix, self.model
        fixed_days = {p // ix.periods_per_day for p, _ in self.fixed_slots[c]}
        missing = int(ix.min_days[c]) - len(fixed_days)
        if missing <= 0:
            return 0
        by_day: dict[int, list[cp_model.IntVar]] = defaultdict(list)
        for p, var in self.x[c].items():
            if p // ix.periods_per_day not in fixed_days:
                by_day[p // ix.periods_per_day].append(var)
        used = []
        for d, vs in by_day.items():
            used.append(self._any(vs, f"d{c}_{d}"))
        short = m.new_int_var(0, missing, f"short{c}")
        m.add_max_equality(short, [0, missing - sum(used)])
        return MIN_WORKING_DAYS_WEIGHT * short

    def _any(self, vs: list[cp_model.IntVar], name: str) -> cp_model.IntVar:
        """A boolean equal to OR(vs). Every auxiliary variable is tied both ways, so the
        objective equals the soft cost in every solution, not only in optimal ones."""
        anyv = self.model.new_bool_var(name)
        self.model.add_max_equality(anyv, vs)
        return anyv

    def _stability(self, c: int) -> cp_model.LinearExprT:
        m = self.model
        fixed_rooms = {r for _, r in self.fixed_slots[c]}
        by_room: dict[int, list[cp_model.IntVar]] = defaultdict(list)
        for (_, r), var in self.z[c].items():
            if r not in fixed_rooms:
                by_room[r].append(var)
        used = []
        for r, vs in by_room.items():
            used.append(self._any(vs, f"y{c}_{r}"))
        if not fixed_rooms and used:
            m.add(sum(used) >= 1)
        return len(fixed_rooms) + sum(used) - 1

    def _compactness(self, members: tuple[int, ...]) -> cp_model.LinearExprT:
        """2 × lectures of the curriculum in periods with no curriculum lecture next to
        them on the same day. A free course never shares a period with a member's fixed
        lecture (they conflict), so a period's count is either fixed or a 0/1 sum."""
        ix, m = self.ix, self.model
        fixed = self.course_busy[list(members)].sum(axis=0)
        free = [c for c in members if c in self.counts]
        occ: list[cp_model.LinearExprT] = [
            int(fixed[p]) + sum(self.x[c][p] for c in free if p in self.x[c]) for p in range(ix.n_periods)
        ]
        cost: list[cp_model.LinearExprT] = []
        for p in range(ix.n_periods):
            day = p // ix.periods_per_day
            near = [occ[q] for q in (p - 1, p + 1) if 0 <= q < ix.n_periods and q // ix.periods_per_day == day]
            if fixed[p]:
                here, weight = 1, COMPACTNESS_WEIGHT * int(fixed[p])
            elif isinstance(occ[p], int):
                continue  # empty, and no free course can come here
            else:
                here, weight = occ[p], COMPACTNESS_WEIGHT
            if any(isinstance(e, int) and e > 0 for e in near):
                continue  # a fixed neighbour: never isolated
            near = [e for e in near if not isinstance(e, int)]
            if not near:
                cost.append(weight * here)
                continue
            iso = m.new_bool_var(f"iso{members[0]}_{p}")
            m.add(iso >= here - sum(near))
            m.add(iso <= here)
            for e in near:
                m.add(iso + e <= 1)
            cost.append(weight * iso)
        return sum(cost)
