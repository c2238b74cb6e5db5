"""Hard-feasible local-search moves over a `SearchState`.

Each operator proposes one change, asks `accept(delta)` (the acceptance rule of the
caller) and either applies it and returns the soft delta, or leaves the state as it was
and returns None. All of them keep hard violations at zero.
"""

from __future__ import annotations

import random
from typing import Callable

from solver.state import SearchState

Accept = Callable[[int], bool]
Operator = Callable[[SearchState, random.Random, Accept], "int | None"]


def pick_room(state: SearchState, l: int, p: int, rng: random.Random) -> int:
    """A free room of `p` for `l`: its own room if free, else the cheapest (capacity, stability)."""
    own = state.room[l]
    p_n, occ = state.n_periods, state.occ
    if own >= 0 and not occ[own * p_n + p]:
        return own
    c = state.course_of[l]
    base, cr, pen, used = c * state.n_rooms, state.cr, state.penalty, state.rooms_used[c] > 0
    best, best_key = -1, None
    for r in range(state.n_rooms):
        if not occ[r * p_n + p]:
            key = pen[base + r] + (1 if used and not cr[base + r] else 0) + rng.random() * 0.5
            if best_key is None or key < best_key:
                best, best_key = r, key
    return best


def _to_period(state: SearchState, l: int, p: int, rng: random.Random, accept: Accept) -> int | None:
    """Lecture l to period p (its own room when free there), if `accept` takes the cost change."""
    r = pick_room(state, l, p, rng)
    return None if r < 0 else _to_slot(state, l, p, r, accept)


def _to_slot(state: SearchState, l: int, p: int, r: int, accept: Accept) -> int | None:
    d = state.move_delta(l, p, r)
    if accept(d):
        state.move(l, p, r)
        return d
    return None


def move(state: SearchState, rng: random.Random, accept: Accept) -> int | None:
    """A random lecture to a random period, in its own room when free there."""
    l = int(rng.random() * state.n_lectures)
    p = int(rng.random() * state.n_periods)
    if p == state.period[l]:
        return None
    i = state.course_of[l] * state.n_periods + p
    if state.cp[i] or state.conf[i] or state.unavailable[i]:
        return None
    return _to_period(state, l, p, rng, accept)


def spread(state: SearchState, rng: random.Random, accept: Accept) -> int | None:
    """A lecture of a course short of working days, from a day it uses twice to an unused day."""
    l = int(rng.random() * state.n_lectures)
    c, n_days = state.course_of[l], state.n_days
    if state.days_used[c] >= state.min_days[c] or state.cd[c * n_days + state.day_of[state.period[l]]] < 2:
        return None
    free_days = [d for d in range(n_days) if not state.cd[c * n_days + d]]
    ppd = state.n_periods // n_days
    p = rng.choice(free_days) * ppd + int(rng.random() * ppd)
    i = c * state.n_periods + p
    if state.conf[i] or state.unavailable[i]:
        return None
    return _to_period(state, l, p, rng, accept)


def swap(state: SearchState, rng: random.Random, accept: Accept) -> int | None:
    """A random lecture to a random (period, room): moved if the room is free, else swapped."""
    l = int(rng.random() * state.n_lectures)
    p, r = int(rng.random() * state.n_periods), int(rng.random() * state.n_rooms)
    there = state.occ[r * state.n_periods + p]
    if there:
        other = there[0]
        if other == l or not state.can_swap(l, other):
            return None
        d = state.swap_delta(l, other)
        if accept(d):
            state.swap(l, other)
            return d
        return None
    if not state.can_move(l, p, r):
        return None
    return _to_slot(state, l, p, r, accept)


def room_change(state: SearchState, rng: random.Random, _accept: Accept) -> int | None:
    """A random lecture to another room of the same period (swapping with its occupant).

    Room moves only descend: their uphill steps, undone a moment later, would look
    like progress to the operator bandit and buy little diversity."""
    l = int(rng.random() * state.n_lectures)
    p, r = state.period[l], int(rng.random() * state.n_rooms)
    if r == state.room[l]:
        return None
    there = state.occ[r * state.n_periods + p]
    if there:
        d = state.swap_delta(l, there[0])
        if d <= 0:
            state.swap(l, there[0])
            return d
        return None
    d = state.move_delta(l, p, r)
    if d <= 0:
        state.move(l, p, r)
        return d
    return None


def course_rooms(state: SearchState, rng: random.Random, _accept: Accept) -> int | None:
    """All lectures of a random course into one room, swapping rooms with the occupants (descent only)."""
    c = state.course_of[int(rng.random() * state.n_lectures)]
    if state.rooms_used[c] < 2:
        return None
    r = int(rng.random() * state.n_rooms)
    p_n, before = state.n_periods, state.soft
    done: list[tuple[int, int, int]] = []  # (lecture, occupant swapped with or -1, previous room)
    for l in state.lectures_of[c]:
        p, own = state.period[l], state.room[l]
        if own == r:
            continue
        there = state.occ[r * p_n + p]
        other = there[0] if there else -1
        if other >= 0:
            state.swap(l, other)
        else:
            state.move(l, p, r)
        done.append((l, other, own))
    d = state.soft - before
    if d <= 0:
        return d
    for l, other, own in reversed(done):
        if other >= 0:
            state.swap(l, other)
        else:
            state.move(l, state.period[l], own)
    return None


def kempe_chain(state: SearchState, l: int, p2: int) -> tuple[list[int], list[int]]:
    """The lectures of `l`'s period and of `p2` linked to `l` by conflicts (same course included)."""
    p1 = state.period[l]
    at = {p1: state.lectures_at(p1), p2: state.lectures_at(p2)}
    course, conflicting = state.course_of, state.conflicting
    side = {l: p1}
    frontier = [l]
    while frontier:
        x = frontier.pop()
        cx, other = course[x], p2 if side[x] == p1 else p1
        for y in at[other]:
            if y not in side and (course[y] == cx or course[y] in conflicting[cx]):
                side[y] = other
                frontier.append(y)
    return [x for x, p in side.items() if p == p1], [x for x, p in side.items() if p == p2]


def kempe(state: SearchState, rng: random.Random, accept: Accept) -> int | None:
    """Kempe-chain interchange of a random lecture's period with another period, then rooms."""
    l = int(rng.random() * state.n_lectures)
    p1, p2 = state.period[l], int(rng.random() * state.n_periods)
    if p1 == p2:
        return None
    out1, out2 = kempe_chain(state, l, p2)
    p_n, un, course = state.n_periods, state.unavailable, state.course_of
    if any(un[course[x] * p_n + p2] for x in out1) or any(un[course[x] * p_n + p1] for x in out2):
        return None
    old = [(x, state.period[x], state.room[x]) for x in out1 + out2]
    before = state.soft
    for x in out1 + out2:
        state.unplace(x)
    if not (_put(state, out1, p2, old, rng) and _put(state, out2, p1, old, rng)):
        state.reassign(old)
        return None
    d = state.soft - before
    if accept(d):
        return d
    state.reassign(old)
    return None


def _put(state: SearchState, lectures: list[int], p: int, old: list[tuple[int, int, int]], rng: random.Random) -> bool:
    rooms = {x: r for x, _, r in old}
    for x in sorted(lectures, key=lambda x: -state.students[state.course_of[x]]):
        state.room[x] = rooms[x]  # so pick_room prefers the lecture's previous room
        r = pick_room(state, x, p, rng)
        state.room[x] = -1
        if r < 0:
            return False
        state.place(x, p, r)
    return True



OPERATORS: dict[str, Operator] = {
    "move": move,
    "swap": swap,
    "room": room_change,
    "spread": spread,
    "course_rooms": course_rooms,
    "kempe": kempe,
}
