"""The CP-SAT neighbourhood: free the lectures of a window, let `solver.cpsat.reoptimize`
re-place them optimally around the rest, and copy the answer back into the state."""

from __future__ import annotations

import random

from solver.progress import StopCheck
from solver.state import SearchState

MAX_WINDOW = 40


def window_lectures(state: SearchState, rng: random.Random) -> list[int]:
    """The lectures of a random window: a day's periods, a room, or a curriculum's courses."""
    kind = rng.randrange(3)
    if kind == 0:
        ppd = state.n_periods // state.n_days
        day = rng.randrange(state.n_days)
        first = day * ppd + rng.randrange(max(ppd - 2, 1))
        chosen = [l for p in range(first, min(first + 3, (day + 1) * ppd)) for l in state.lectures_at(p)]
    elif kind == 1:
        r = rng.randrange(state.n_rooms)
        chosen = [l for l in range(state.n_lectures) if state.room[l] == r]
    else:
        courses = state.instance.index.curriculum_courses
        members = set(courses[rng.randrange(len(courses))]) if courses else set()
        chosen = [l for l in range(state.n_lectures) if state.course_of[l] in members]
    rng.shuffle(chosen)
    return sorted(chosen[:MAX_WINDOW])


def reoptimize_window(
    state: SearchState, rng: random.Random, *, time_limit: float, workers: int, should_stop: StopCheck
) -> int | None:
    """Soft delta (< 0) when CP-SAT improved a random window, else None with the state unchanged."""
    from solver.cpsat import ROOM_CHOICES, reoptimize  # CP-SAT is heavy to import; only this neighbourhood needs it

    free = window_lectures(state, rng)
    if not free:
        return None
    better = reoptimize(
        state.to_timetable(),
        free,
        time_limit=time_limit,
        workers=workers,
        seed=rng.randrange(1 << 16),
        should_stop=should_stop,
        room_choices=ROOM_CHOICES,
    )
    if better is None:
        return None
    before = state.soft
    old = [(l, state.period[l], state.room[l]) for l in free]
    state.reassign([(l, better.timetable.period[l], better.timetable.room[l]) for l in free])
    if state.hard or state.soft >= before:  # keep the state feasible whatever CP-SAT said
        state.reassign(old)
        return None
    return state.soft - before
