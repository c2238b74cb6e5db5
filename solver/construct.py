"""Make a timetable complete and hard-feasible, at any size.

Dynamic saturation order: the course with the least slack (usable periods minus lectures
still to place) goes next, and its lecture takes the usable period that takes the fewest
options from the courses still waiting (ties: a day the course does not use yet). A lecture
with no usable period ejects the cheapest blockers from one period: conflict statistics make
often-ejected courses dear, and a tabu list stops a lecture from undoing its last ejection
at once. The ejected lectures wait again. numpy mirrors of the state's counters keep each
step to a few vectorised passes over one period's column, so the work grows with the
number of lectures, not with its square.
"""

from __future__ import annotations

import random
import time
from typing import Callable

import numpy as np

from solver.model import ROOM_FIT_MISSING_SEAT
from solver.progress import StopCheck
from solver.state import SearchState
from solver.timetable import UNPLACED, Timetable

_TABU_TENURE = 12
# Steps without a new fewest-unplaced count, per lecture, after which the lectures left
# are taken to have no place (an infeasible combination the pre-solve check cannot see).
_STALL_STEPS_PER_LECTURE = 5
# Weight of a free day for a course short of working days, against one option lost.
_NEW_DAY_BONUS = 0.5

PlacedCallback = Callable[[int, int], None]  # (lectures placed, lectures in all)


def _ignore_placed(_placed: int, _total: int) -> None:
    return None


def feasible_state(
    timetable: Timetable,
    rng: random.Random,
    deadline: float,
    should_stop: StopCheck,
    on_placed: PlacedCallback = _ignore_placed,
) -> SearchState:
    """A state holding the placed lectures that do not clash with earlier ones, then all it can place."""
    state = SearchState(Timetable.empty(timetable.instance))
    for l, (p, r) in enumerate(zip(timetable.period, timetable.room)):
        if p != UNPLACED and _fits(state, l, p) and not state.occ[r * state.n_periods + p]:
            state.place(l, p, r)
    place_unplaced(state, rng, deadline, should_stop, on_placed)
    return state


def place_unplaced(
    state: SearchState,
    rng: random.Random,
    deadline: float,
    should_stop: StopCheck,
    on_placed: PlacedCallback = _ignore_placed,
) -> None:
    """Place every unplaced lecture of a hard-feasible state, keeping it hard-feasible,
    until none is left or time is up."""
    if all(p != UNPLACED for p in state.period):
        return
    _Constructor(state, rng).run(deadline, should_stop, on_placed)


def _fits(state: SearchState, l: int, p: int) -> bool:
    i = state.course_of[l] * state.n_periods + p
    return not (state.cp[i] or state.conf[i] or state.unavailable[i])


class _Constructor:
    def __init__(self, state: SearchState, rng: random.Random) -> None:
        ix = state.instance.index
        self.state = state
        c_n, p_n, r_n = ix.n_courses, ix.n_periods, ix.n_rooms
        self.p_n, self.ppd = p_n, ix.periods_per_day
        self.unavailable = ix.unavailable
        self.partners = [np.asarray(ps, dtype=np.int64) for ps in state.partners]
        self.conf = np.asarray(state.conf, dtype=np.int64).reshape(c_n, p_n)
        self.busy = np.asarray(state.cp, dtype=np.int64).reshape(c_n, p_n) > 0
        self.room_course = np.full((p_n, r_n), -1, dtype=np.int64)  # course in each room and period
        for l, (p, r) in enumerate(zip(state.period, state.room)):
            if p != UNPLACED:
                self.room_course[p, r] = state.course_of[l]
        self.free_rooms = (self.room_course < 0).sum(axis=1)
        self.waiting: list[list[int]] = [[] for _ in range(c_n)]
        for l, p in enumerate(state.period):
            if p == UNPLACED:
                self.waiting[state.course_of[l]].append(l)
        self.remaining = np.array([len(w) for w in self.waiting], dtype=np.int64)
        self.unplaced = int(self.remaining.sum())
        # The most complete state seen before an ejection (kept only when it is the best).
        self.fewest_unplaced = self.unplaced
        self.fewest = self._snapshot()
        self.fewest_step = 0
        self.usable = ~self.unavailable & ~self.busy & (self.conf == 0) & (self.free_rooms > 0)[None, :]
        self.options = self.usable.sum(axis=1)
        self.ejections = np.ones(c_n)  # conflict statistics: how dear a course is to eject
        self.tabu = np.zeros((c_n, p_n), dtype=np.int64)
        self.fit = ix.room_fit
        self.noise = np.random.default_rng(rng.randrange(1 << 32))
        self.step = 0

    def _snapshot(self) -> list[tuple[int, int, int]]:
        state = self.state
        return [(x, state.period[x], state.room[x]) for x in range(state.n_lectures)]

    def run(self, deadline: float, should_stop: StopCheck, on_placed: PlacedCallback) -> None:
        """Place until none is left or time is up; then, if ejections left more lectures
        out than some earlier moment did, go back to that moment."""
        total = self.state.n_lectures
        stall = _STALL_STEPS_PER_LECTURE * total + 500
        while self.remaining.any() and time.monotonic() < deadline and not should_stop():
            if self.step - self.fewest_step > stall:
                break
            for _ in range(64):  # look at the clock and the stop flag every few steps
                self._place_one(self._next_course())
                if not self.remaining.any():
                    break
            on_placed(total - self.unplaced, total)
        if self.unplaced > self.fewest_unplaced:
            self.state.reassign(self.fewest)

    def _next_course(self) -> int:
        """Least slack first; a course that can only go in by ejecting waits until no other
        can go in without (so a hopeless course cannot starve the rest)."""
        slack = np.where(self.remaining > 0, self.options - self.remaining, np.iinfo(np.int32).max)
        stuck = (self.options == 0) * 2.0**40
        return int(np.argmin(stuck + slack * 4096.0 + self.options + self.noise.random(len(slack))))

    def _place_one(self, c: int) -> None:
        self.step += 1
        l = self.waiting[c].pop()
        periods = np.flatnonzero(self.usable[c])
        if not len(periods) and self.unplaced < self.fewest_unplaced:
            self.fewest_unplaced, self.fewest, self.fewest_step = self.unplaced, self._snapshot(), self.step
        p = self._best_period(c, periods) if len(periods) else self._eject_for(c)
        if p < 0:  # no period at all: the course's lectures stay unplaced, the others go on
            self.waiting[c] = []
            self.remaining[c] = 0
            return
        self._put(l, c, p)

    def _best_period(self, c: int, periods: np.ndarray) -> int:
        """The usable period that costs the waiting courses the fewest options."""
        waiting = self.remaining > 0
        partners = self.partners[c]
        partners = partners[waiting[partners]]
        slack = np.maximum(self.options[partners] - self.remaining[partners], 0) + 1.0
        lost = (self.usable[np.ix_(partners, periods)] / slack[:, None]).sum(axis=0)
        last_room = self.free_rooms[periods] == 1
        if last_room.any():  # taking a period's last room takes it from every waiting course
            lost[last_room] += (self.usable[:, periods[last_room]] & waiting[:, None]).sum(axis=0) - 1
        days = periods // self.ppd
        state = self.state
        if state.days_used[c] < state.min_days[c]:
            lost -= _NEW_DAY_BONUS * (self.busy[c].reshape(-1, self.ppd)[days].sum(axis=1) == 0)
        lost += self.noise.random(len(periods)) * 1e-3
        return int(periods[np.argmin(lost)])

    def _eject_for(self, c: int) -> int:
        """Free a period for `c` by taking out its cheapest blockers; the period, or -1."""
        open_ = ~self.unavailable[c] & ~self.busy[c]
        if not open_.any():
            return -1
        blocking = self.busy[self.partners[c]]
        price = (blocking * self.ejections[self.partners[c]][:, None]).sum(axis=0)
        # A full period without a blocker to take out must give up one room: that of its
        # cheapest course (none of them conflicts with c, or it would be a blocker).
        crowded = (self.free_rooms == 0) & ~blocking.any(axis=0)
        if crowded.any():
            price[crowded] += self.ejections[self.room_course[crowded]].min(axis=1)
        price[~open_] = np.inf
        price[self.tabu[c] > self.step] += 1e6
        price += self.noise.random(self.p_n) * 0.5
        p = int(np.argmin(price))
        if not np.isfinite(price[p]):
            return -1
        for x in self._blockers(c, p):
            self._take_out(x, p)
        return p

    def _blockers(self, c: int, p: int) -> list[int]:
        state, p_n, partners = self.state, self.p_n, self.partners[c]
        out = [state.cell_lecture[c2 * p_n + p] for c2 in partners[self.busy[partners, p]].tolist()]
        if not out and self.free_rooms[p] == 0:
            occupants = self.room_course[p]
            cheapest = int(occupants[np.argmin(self.ejections[occupants])])
            out.append(state.cell_lecture[cheapest * p_n + p])
        return out

    def _take_out(self, x: int, p: int) -> None:
        state = self.state
        cx, r = state.course_of[x], state.room[x]
        state.unplace(x)
        self.busy[cx, p] = False
        self.conf[self.partners[cx], p] -= 1
        self.room_course[p, r] = -1
        self.free_rooms[p] += 1
        self.waiting[cx].append(x)
        self.remaining[cx] += 1
        self.unplaced += 1
        self.ejections[cx] += 1
        self.tabu[cx, p] = self.step + _TABU_TENURE
        self._refresh_usable(p)

    def _put(self, l: int, c: int, p: int) -> None:
        state = self.state
        free = np.flatnonzero(self.room_course[p] < 0)
        fit = self.fit[c, free]
        own = state.cr[c * state.n_rooms : (c + 1) * state.n_rooms]
        if state.rooms_used[c]:
            # stability (one room per course) weighs like a missing seat
            fit = fit + float(ROOM_FIT_MISSING_SEAT) * (np.asarray(own, dtype=np.int64)[free] == 0)
        r = int(free[np.argmin(fit)])
        state.place(l, p, r)
        self.busy[c, p] = True
        self.conf[self.partners[c], p] += 1
        self.room_course[p, r] = c
        self.free_rooms[p] -= 1
        self.remaining[c] -= 1
        self.unplaced -= 1
        self._refresh_usable(p)

    def _refresh_usable(self, p: int) -> None:
        """Recompute period p's column (one period changed: its rooms, its courses' conflicts)."""
        now = ~self.unavailable[:, p] & ~self.busy[:, p] & (self.conf[:, p] == 0) & (self.free_rooms[p] > 0)
        self.options += now.astype(np.int64) - self.usable[:, p]
        self.usable[:, p] = now
