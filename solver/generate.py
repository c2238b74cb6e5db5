"""Synthetic instances, feasible by construction, for demos and scaling benches.

A hidden timetable comes first: every lecture gets a period with a free room, spread
over the days. Teachers and curricula then group only courses whose lectures never
share a period, and unavailability avoids the periods a course uses, so the hidden
timetable (the witness) has no hard violation whatever the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from solver.errors import InstanceError, counted
from solver.model import Course, Curriculum, Instance, Room, Unavailability
from solver.timetable import Timetable
from solver.validate import MAX_LECTURES, Sizes, check_sizes, locate_by_path

# Shapes close to the ITC-2007 instances: mostly 2-6 lectures a course, teachers with
# one to three courses, curricula of three to six courses.
LECTURE_WEIGHTS = {1: 3, 2: 12, 3: 20, 4: 22, 5: 18, 6: 15, 7: 6, 8: 4}
TEACHER_LOAD_WEIGHTS = {1: 50, 2: 35, 3: 15}
CURRICULUM_SIZES = (3, 6)
ROOM_SIZE_CLASSES = (((10, 40), 4), ((40, 120), 4), ((120, 300), 2))
STUDENT_SHARE = (0.35, 1.08)  # of a room's capacity; above 1, some courses overflow every room of their size
TARGET_LOAD = 0.8  # share of room slots the lectures fill, leaving the solver some room
NEIGHBOUR_SPAN = 12  # curricula favour nearby course numbers, like the years of a degree
CANDIDATE_TRIES = 60


@dataclass(frozen=True)
class _Witness:
    periods: tuple[tuple[int, ...], ...]  # per course, sorted
    rooms: tuple[tuple[int, ...], ...]  # per course, aligned with `periods`


def generate(*, courses: int, rooms: int, curricula: int, days: int = 5, periods_per_day: int = 6,
             seed: int = 0, name: str | None = None) -> Instance:
    instance, _ = generate_with_witness(courses=courses, rooms=rooms, curricula=curricula, days=days,
                                        periods_per_day=periods_per_day, seed=seed, name=name)
    return instance


def generate_with_witness(*, courses: int, rooms: int, curricula: int, days: int = 5, periods_per_day: int = 6,
                          seed: int = 0, name: str | None = None) -> tuple[Instance, Timetable]:
    """The instance and the hidden timetable it was built around (hard cost 0)."""
    check_sizes(Sizes(days, periods_per_day, courses, rooms, curricula, 0), locate_by_path)
    n_periods = days * periods_per_day
    if courses > rooms * n_periods:
        raise InstanceError(f"{courses} courses do not fit in {counted(rooms, 'room')} x {n_periods} periods",
                            field="courses")
    rng = random.Random(seed)
    capacities = [_room_capacity(rng) for _ in range(rooms)]
    lectures = _lecture_counts(rng, courses, min(MAX_LECTURES, max(courses, int(TARGET_LOAD * rooms * n_periods))),
                               n_periods)
    students = [max(1, round(rng.choice(capacities) * rng.uniform(*STUDENT_SHARE))) for _ in range(courses)]
    periods = _place(rng, lectures, rooms, days, periods_per_day)
    witness = _Witness(periods, _assign_rooms(periods, students, capacities))
    teachers = _teachers(rng, periods)
    used_days = [len({p // periods_per_day for p in ps}) for ps in periods]

    width = len(str(courses))
    course_ids = [f"c{i + 1:0{width}d}" for i in range(courses)]
    instance = Instance(
        name=name or f"synthetic-{courses}c-{rooms}r-{curricula}q-seed{seed}",
        days=days,
        periods_per_day=periods_per_day,
        courses=tuple(
            Course(course_ids[c], teachers[c], len(periods[c]), max(1, used_days[c] - (rng.random() < 0.2)),
                   students[c])
            for c in range(courses)),
        rooms=tuple(Room(f"r{r:0{len(str(rooms))}d}", cap) for r, cap in enumerate(capacities)),
        curricula=tuple(
            Curriculum(f"q{q:0{max(3, len(str(curricula)))}d}", tuple(course_ids[c] for c in members))
            for q, members in enumerate(_curricula(rng, periods, curricula))),
        unavailability=tuple(
            Unavailability(course_ids[c], p // periods_per_day, p % periods_per_day)
            for c, p in _unavailable(rng, periods, days, periods_per_day)),
    )
    timetable = Timetable.from_arrays(instance, (p for ps in witness.periods for p in ps),
                                      (r for rs in witness.rooms for r in rs))
    return instance, timetable


def _room_capacity(rng: random.Random) -> int:
    (low, high), = rng.choices([c for c, _ in ROOM_SIZE_CLASSES], [w for _, w in ROOM_SIZE_CLASSES])
    return 5 * rng.randint(low // 5, high // 5)


def _lecture_counts(rng: random.Random, courses: int, cap: int, n_periods: int) -> list[int]:
    """Lectures per course from `LECTURE_WEIGHTS`, scaled down to at most `cap` in all (`cap` >= courses)."""
    counts = [min(n, n_periods) for n in rng.choices(list(LECTURE_WEIGHTS), list(LECTURE_WEIGHTS.values()), k=courses)]
    total = sum(counts)
    if total > cap:
        counts = [max(1, n * cap // total) for n in counts]
    by_size = sorted(range(courses), key=lambda c: -counts[c])
    while sum(counts) > cap:  # only the courses raised to 1 can leave an excess, at most `courses`
        for c in by_size:
            if counts[c] > 1 and sum(counts) > cap:
                counts[c] -= 1
    return counts


def _place(rng: random.Random, lectures: list[int], rooms: int, days: int, per_day: int) -> tuple[tuple[int, ...], ...]:
    """Periods of each course's lectures: on distinct days while there are days left, in
    the least loaded period of the day so that free rooms stay spread over the week. A
    lecture that finds no period with a free room is dropped (never the first one of a
    course: there are at least as many room slots as courses)."""
    load = [0] * (days * per_day)
    placed: list[tuple[int, ...]] = [()] * len(lectures)
    order = sorted(range(len(lectures)), key=lambda c: (-lectures[c], rng.random()))
    for c in order:
        chosen: set[int] = set()
        wanted_days = rng.sample(range(days), min(lectures[c], days))
        wanted_days += [rng.randrange(days) for _ in range(lectures[c] - len(wanted_days))]
        for day in wanted_days:
            free = [p for p in range(day * per_day, (day + 1) * per_day) if load[p] < rooms and p not in chosen]
            free = free or [p for p in range(len(load)) if load[p] < rooms and p not in chosen]
            if not free:
                continue
            lightest = min(load[p] for p in free)
            period = rng.choice([p for p in free if load[p] == lightest])
            chosen.add(period)
            load[period] += 1
        placed[c] = tuple(sorted(chosen))
    return tuple(placed)


def _assign_rooms(periods: tuple[tuple[int, ...], ...], students: list[int],
                  capacities: list[int]) -> tuple[tuple[int, ...], ...]:
    """In each period the largest course takes the largest room, which keeps room capacity cost low."""
    at: dict[int, list[int]] = {}
    for c, ps in enumerate(periods):
        for p in ps:
            at.setdefault(p, []).append(c)
    by_capacity = sorted(range(len(capacities)), key=lambda r: -capacities[r])
    room_of: dict[tuple[int, int], int] = {}
    for p, present in at.items():
        for c, r in zip(sorted(present, key=lambda c: -students[c]), by_capacity):
            room_of[c, p] = r
    return tuple(tuple(room_of[c, p] for p in ps) for c, ps in enumerate(periods))


def _teachers(rng: random.Random, periods: tuple[tuple[int, ...], ...]) -> list[str]:
    """Teacher names per course; a teacher's courses never share a period in the witness."""
    loads = list(TEACHER_LOAD_WEIGHTS)
    teacher_of = [0] * len(periods)
    busy: list[set[int]] = []
    room_left: list[int] = []  # how many more courses each teacher takes
    open_teachers: list[int] = []
    for c in rng.sample(range(len(periods)), len(periods)):
        tries = rng.sample(open_teachers, min(len(open_teachers), CANDIDATE_TRIES))
        t = next((t for t in tries if busy[t].isdisjoint(periods[c])), None)
        if t is None:
            t = len(busy)
            busy.append(set())
            room_left.append(rng.choices(loads, list(TEACHER_LOAD_WEIGHTS.values()))[0])
            open_teachers.append(t)
        teacher_of[c] = t
        busy[t].update(periods[c])
        room_left[t] -= 1
        if room_left[t] == 0:
            open_teachers.remove(t)
    width = max(3, len(str(len(busy))))
    return [f"t{t:0{width}d}" for t in teacher_of]


def _curricula(rng: random.Random, periods: tuple[tuple[int, ...], ...], count: int) -> list[tuple[int, ...]]:
    """Groups of courses whose witness periods are disjoint, mostly of nearby course numbers."""
    n = len(periods)
    out = []
    for _ in range(count):
        size = min(n, rng.randint(*CURRICULUM_SIZES))
        first = rng.randrange(n)
        members, busy = [first], set(periods[first])
        for _ in range(CANDIDATE_TRIES):
            if len(members) == size:
                break
            near = rng.random() < 0.7
            c = (first + rng.randint(-NEIGHBOUR_SPAN, NEIGHBOUR_SPAN)) % n if near else rng.randrange(n)
            if c not in members and busy.isdisjoint(periods[c]):
                members.append(c)
                busy.update(periods[c])
        out.append(tuple(sorted(members)))
    return out


def _unavailable(rng: random.Random, periods: tuple[tuple[int, ...], ...], days: int,
                 per_day: int) -> list[tuple[int, int]]:
    """(course, period) pairs: for some courses a few scattered periods, for a few a whole
    free day, never a period the course uses in the witness."""
    n_periods = days * per_day
    out = []
    for c, used in enumerate(periods):
        free = [p for p in range(n_periods) if p not in used]
        roll = rng.random()
        if roll < 0.4 or not free:
            continue
        if roll < 0.85:
            chosen = rng.sample(free, min(len(free), rng.randint(1, max(1, n_periods // 6))))
        else:
            free_days = [d for d in range(days) if all(p // per_day != d for p in used)]
            day = rng.choice(free_days) if free_days else rng.randrange(days)
            chosen = [p for p in range(day * per_day, (day + 1) * per_day) if p not in used]
        out.extend((c, p) for p in sorted(chosen))
    return out
