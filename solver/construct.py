"""Make a timetable hard-feasible and complete: keep the consistent part, place the rest.

Placement is greedy (most constrained lecture first, cheapest feasible slot) with
ejection when a lecture fits nowhere: it takes the period that displaces the fewest
lectures, which go back into the queue. A short tabu list stops ping-pong.
"""

from __future__ import annotations

import random
import time

from solver.neighbourhoods import pick_room
from solver.progress import StopCheck
from solver.state import SearchState
from solver.timetable import UNPLACED, Timetable

_TABU_TENURE = 10


def feasible_state(timetable: Timetable, rng: random.Random, deadline: float, should_stop: StopCheck) -> SearchState:
    """A state holding the placed lectures that do not clash with earlier ones, then all it can place."""
    state = SearchState(Timetable.empty(timetable.instance))
    for l, (p, r) in enumerate(zip(timetable.period, timetable.room)):
        if p != UNPLACED and _fits(state, l, p) and not state.occ[r * state.n_periods + p]:
            state.place(l, p, r)
    place_unplaced(state, rng, deadline, should_stop)
    return state


def place_unplaced(state: SearchState, rng: random.Random, deadline: float, should_stop: StopCheck) -> None:
    queue = [l for l in range(state.n_lectures) if state.period[l] == UNPLACED]
    tabu: dict[tuple[int, int], int] = {}
    step = 0
    while queue and time.monotonic() < deadline and not should_stop():
        step += 1
        roomy = [bool(state.free_rooms(p)) for p in range(state.n_periods)]
        l = min(queue, key=lambda x: _options(state, x, roomy))
        queue.remove(l)
        slot = _cheapest_slot(state, l, rng)
        if slot is not None:
            state.place(l, *slot)
            continue
        p = _least_disruptive_period(state, l, tabu, step, rng)
        if p is None:
            continue  # nowhere at all (over-constrained course): stays unplaced
        ejected = _blockers(state, l, p)
        for x in ejected:
            tabu[(x, p)] = step + _TABU_TENURE
            state.unplace(x)
        state.place(l, p, pick_room(state, l, p, rng))
        queue.extend(ejected)


def _fits(state: SearchState, l: int, p: int) -> bool:
    i = state.course_of[l] * state.n_periods + p
    return not (state.cp[i] or state.conf[i] or state.unavailable[i])


def _options(state: SearchState, l: int, roomy: list[bool]) -> int:
    return sum(1 for p in range(state.n_periods) if roomy[p] and _fits(state, l, p))


def _cheapest_slot(state: SearchState, l: int, rng: random.Random) -> tuple[int, int] | None:
    best, best_d = None, 0.0
    for p in range(state.n_periods):
        if not _fits(state, l, p):
            continue
        r = pick_room(state, l, p, rng)
        if r < 0:
            continue
        d = state.place_delta(l, p, r) + rng.random()
        if best is None or d < best_d:
            best, best_d = (p, r), d
    return best


def _least_disruptive_period(
    state: SearchState, l: int, tabu: dict[tuple[int, int], int], step: int, rng: random.Random
) -> int | None:
    c, best, best_n = state.course_of[l], None, 0.0
    for p in range(state.n_periods):
        i = c * state.n_periods + p
        if state.unavailable[i] or state.cp[i] or tabu.get((l, p), 0) > step:
            continue
        n = len(_blockers(state, l, p)) + rng.random()
        if best is None or n < best_n:
            best, best_n = p, n
    return best


def _blockers(state: SearchState, l: int, p: int) -> list[int]:
    """The lectures to take out of `p` so that `l` fits there (one more when no room is free)."""
    c = state.course_of[l]
    at = state.lectures_at(p)
    out = [x for x in at if state.course_of[x] in state.conflicting[c]]
    if len(at) - len(out) >= state.n_rooms:
        rest = [x for x in at if x not in out]
        out.append(min(rest, key=lambda x: state.students[state.course_of[x]]))
    return out
