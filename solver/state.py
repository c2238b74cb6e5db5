"""A mutable timetable with exact, incremental evaluation for local search.

The state mirrors the official validator: it keeps the table `tt[course][period] = room`
(a "cell" per course and period, whose room is that of the lowest-numbered lecture of the
course placed there) and every counter the eight cost components depend on. Raw
`place`/`unplace`/`move` accept anything, feasible or not, and keep `cost()` equal to
`evaluate(to_timetable())`. The construction, the CP-SAT window and the GA's crossover
work on it; the annealing itself runs on the compiled kernel's arrays (`solver.kernel`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from solver.evaluate import COMPACTNESS_WEIGHT, MIN_WORKING_DAYS_WEIGHT, Cost
from solver.timetable import UNPLACED, Timetable

_MWD = MIN_WORKING_DAYS_WEIGHT
_CC = COMPACTNESS_WEIGHT


class SearchState:
    def __init__(self, timetable: Timetable) -> None:
        self.instance = timetable.instance
        ix = self.instance.index
        self.n_periods = p_n = ix.n_periods
        self.n_rooms = r_n = ix.n_rooms
        self.n_days = d_n = ix.days
        c_n, q_n = ix.n_courses, len(ix.curriculum_courses)
        self.n_lectures = ix.n_lectures
        self.course_of: list[int] = ix.lecture_course.tolist()
        first = ix.first_lecture.tolist()
        self.lectures_of = [range(first[c], first[c + 1]) for c in range(c_n)]
        self.partners: list[list[int]] = [np.flatnonzero(row).tolist() for row in ix.conflict]
        self.unavailable: list[bool] = ix.unavailable.ravel().tolist()  # [c * P + p]
        self.penalty: list[int] = ix.capacity_penalty.ravel().tolist()  # [c * R + r]
        self.curricula_of: list[tuple[int, ...]] = list(ix.curricula_of)
        self.required: list[int] = ix.lectures.tolist()
        self.min_days: list[int] = ix.min_days.tolist()
        self.day_of = [p // ix.periods_per_day for p in range(p_n)]
        self._setup_compactness(ix.periods_per_day)

        self.period = [UNPLACED] * self.n_lectures
        self.room = [UNPLACED] * self.n_lectures
        self.cp = [0] * (c_n * p_n)  # lectures of course c in period p
        self.cell_lecture = [-1] * (c_n * p_n)  # the lecture the validator keeps for the cell
        self.cell_room = [-1] * (c_n * p_n)
        self.conf = [0] * (c_n * p_n)  # busy conflicting courses of c in period p
        self.occ: list[list[int]] = [[] for _ in range(r_n * p_n)]  # cell lectures per [r * P + p]
        self.cd = [0] * (c_n * d_n)
        self.days_used = [0] * c_n
        self.cr = [0] * (c_n * r_n)
        self.rooms_used = [0] * c_n
        self.cq = [0] * (q_n * p_n)
        self.busy = [0] * c_n

        self.lectures_cost = sum(self.required)
        self.conflicts = self.availability = self.room_occupation = 0
        self.capacity_cost = self.stability_cost = self.isolated = 0
        self.mwd_cost = _MWD * sum(self.min_days)
        for l, (p, r) in enumerate(zip(timetable.period, timetable.room)):
            if p != UNPLACED:
                self.place(l, p, r)

    def _setup_compactness(self, ppd: int) -> None:
        p_n = self.n_periods
        self.prev = [p - 1 if p > 0 else -1 for p in range(p_n)]
        self.next = [p + 1 if p + 1 < p_n else -1 for p in range(p_n)]
        self.first_slot = [p % ppd == 0 for p in range(p_n)]
        self.last_slot = [p % ppd == ppd - 1 for p in range(p_n)]
        # Periods whose isolation test reads period p (the validator's literal rule).
        self.readers = [
            tuple(n for n in (p - 1, p + 1) if 0 <= n < p_n and p in (self.prev[n], self.next[n]) and self._reads(n, p))
            for p in range(p_n)
        ]

    def _reads(self, n: int, p: int) -> bool:
        if p == self.next[n]:
            return not self.last_slot[n] or self.first_slot[n]
        return not self.first_slot[n] or self.last_slot[n]

    # ----- reading -----------------------------------------------------------------

    def cost(self) -> Cost:
        return Cost(
            lectures=self.lectures_cost,
            conflicts=self.conflicts,
            availability=self.availability,
            room_occupation=self.room_occupation,
            room_capacity=self.capacity_cost,
            min_working_days=self.mwd_cost,
            curriculum_compactness=_CC * self.isolated,
            room_stability=self.stability_cost,
        )

    @property
    def hard(self) -> int:
        return self.lectures_cost + self.conflicts + self.availability + self.room_occupation

    @property
    def soft(self) -> int:
        return self.capacity_cost + self.mwd_cost + _CC * self.isolated + self.stability_cost

    def to_timetable(self) -> Timetable:
        return Timetable(self.instance, tuple(self.period), tuple(self.room))

    def lectures_at(self, p: int) -> list[int]:
        """The lectures the validator sees in period `p`, one per occupied room."""
        occ, p_n = self.occ, self.n_periods
        return [lec for r in range(self.n_rooms) for lec in occ[r * p_n + p]]

    def free_rooms(self, p: int) -> list[int]:
        occ, p_n = self.occ, self.n_periods
        return [r for r in range(self.n_rooms) if not occ[r * p_n + p]]

    def _isolated(self, base: int, p: int) -> bool:
        cq = self.cq
        pr, nx = self.prev[p], self.next[p]
        has_prev = pr >= 0 and cq[base + pr] > 0
        has_next = nx >= 0 and cq[base + nx] > 0
        return (self.first_slot[p] and not has_next) or (self.last_slot[p] and not has_prev) or not (has_next or has_prev)

    def _q_delta(self, base: int, p: int, dk: int) -> int:
        """Change in isolated lectures when curriculum (row `base`) gains `dk` courses in `p`."""
        cq = self.cq
        a = cq[base + p]
        d = dk if self._isolated(base, p) else 0
        if a == 0 or a + dk == 0:
            iso = self._isolated
            readers = self.readers[p]
            before = sum(cq[base + n] for n in readers if iso(base, n))
            cq[base + p] = a + dk
            after = sum(cq[base + n] for n in readers if iso(base, n))
            cq[base + p] = a
            d += after - before
        return d

    # ----- feasibility ----------------------------------------------------------

    def can_move(self, l: int, p: int, r: int) -> bool:
        """Moving placed lecture `l` to (`p`, `r`) keeps hard violations at zero."""
        if self.occ[r * self.n_periods + p]:
            return False
        if p == self.period[l]:
            return True
        i = self.course_of[l] * self.n_periods + p
        return not (self.cp[i] or self.conf[i] or self.unavailable[i])

    # ----- raw changes (any state, exact) -------------------------------------------

    def place(self, l: int, p: int, r: int) -> None:
        c = self.course_of[l]
        i = c * self.n_periods + p
        self.period[l], self.room[l] = p, r
        self.cp[i] += 1
        kept = self.cell_lecture[i]
        if kept < 0 or l < kept:
            self._set_cell(c, p, l)

    def unplace(self, l: int) -> None:
        c, p = self.course_of[l], self.period[l]
        if p == UNPLACED:
            return
        i = c * self.n_periods + p
        self.period[l] = self.room[l] = UNPLACED
        self.cp[i] -= 1
        if self.cell_lecture[i] == l:
            rest = [x for x in self.lectures_of[c] if self.period[x] == p]
            self._set_cell(c, p, min(rest) if rest else -1)

    def reassign(self, assignments: Sequence[tuple[int, int, int]]) -> None:
        """Put every (lecture, period, room) at once: all of them leave before any arrives,
        so lectures can trade places without ever meeting; `UNPLACED` leaves one out."""
        for l, _, _ in assignments:
            self.unplace(l)
        for l, p, r in assignments:
            if p != UNPLACED:
                self.place(l, p, r)

    def move(self, l: int, p: int, r: int) -> None:
        """Put `l` at (`p`, `r`), or leave it unplaced when `p` is `UNPLACED`."""
        c = self.course_of[l]
        if p == self.period[l] != UNPLACED and self.cell_lecture[c * self.n_periods + p] == l:
            self._room_off(c, p, self.room[l], l)  # a room change: the period counters stay
            self.room[l] = self.cell_room[c * self.n_periods + p] = r
            self._room_on(c, p, r, l)
            return
        self.unplace(l)
        if p != UNPLACED:
            self.place(l, p, r)

    def _set_cell(self, c: int, p: int, lec: int) -> None:
        i = c * self.n_periods + p
        old_lec, old_room = self.cell_lecture[i], self.cell_room[i]
        if old_lec >= 0:
            self._room_off(c, p, old_room, old_lec)
        if (old_lec < 0) != (lec < 0):
            self._busy_flip(c, p, 1 if lec >= 0 else -1)
        self.cell_lecture[i] = lec
        self.cell_room[i] = self.room[lec] if lec >= 0 else -1
        if lec >= 0:
            self._room_on(c, p, self.room[lec], lec)

    def _room_off(self, c: int, p: int, r: int, lec: int) -> None:
        occ = self.occ[r * self.n_periods + p]
        occ.remove(lec)
        self.room_occupation -= 1 if occ else 0
        self._room_counters(c, r, -1)

    def _room_on(self, c: int, p: int, r: int, lec: int) -> None:
        occ = self.occ[r * self.n_periods + p]
        self.room_occupation += 1 if occ else 0
        occ.append(lec)
        self._room_counters(c, r, 1)

    def _room_counters(self, c: int, r: int, k: int) -> None:
        i = c * self.n_rooms + r
        self.capacity_cost += k * self.penalty[i]
        self.cr[i] += k
        if self.cr[i] == (1 if k > 0 else 0):
            u = self.rooms_used[c]
            self.rooms_used[c] = u + k
            self.stability_cost += max(u + k - 1, 0) - max(u - 1, 0)

    def _busy_flip(self, c: int, p: int, k: int) -> None:
        i, p_n = c * self.n_periods + p, self.n_periods
        b, need = self.busy[c], self.required[c]
        self.busy[c] = b + k
        self.lectures_cost += abs(b + k - need) - abs(b - need)
        self.conflicts += k * self.conf[i]
        self.availability += k if self.unavailable[i] else 0
        for c2 in self.partners[c]:
            self.conf[c2 * p_n + p] += k
        self._period_counters(c, p, k)

    def _period_counters(self, c: int, p: int, k: int) -> None:
        j = c * self.n_days + self.day_of[p]
        self.cd[j] += k
        if self.cd[j] == (1 if k > 0 else 0):
            u, m = self.days_used[c], self.min_days[c]
            self.days_used[c] = u + k
            self.mwd_cost += _MWD * (max(m - u - k, 0) - max(m - u, 0))
        p_n = self.n_periods
        for q in self.curricula_of[c]:
            self.isolated += self._q_delta(q * p_n, p, k)
            self.cq[q * p_n + p] += k
