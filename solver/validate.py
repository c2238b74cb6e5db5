"""Semantic checks shared by every instance reader (`.ctt` text and JSON).

Readers turn their syntax into model values, then call `check_sizes` as soon as
the sizes are known (before reading rows) and `check_contents` on the result.
A `Locate` callback tells where a value came from, so the same check reports a
line number for `.ctt` text and a field path for JSON.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from solver.errors import InstanceError, named, shown
from solver.model import Course, Curriculum, Instance, Room, Unavailability

# Sizes beyond these are refused: they are far above real timetabling problems
# and would only make the solver allocate huge arrays.
MAX_COURSES = 5000
MAX_ROOMS = 1000
MAX_CURRICULA = 10_000
MAX_DAYS = 14
MAX_PERIODS_PER_DAY = 24
MAX_LECTURES = 100_000
MAX_UNAVAILABILITY = 1_000_000
MAX_HEADCOUNT = 100_000  # students or min working days of a course, seats of a room
MAX_ID_CHARS = 100

_TOKEN = re.compile(r"\S+")


@dataclass(frozen=True)
class Location:
    line: int | None = None
    field: str | None = None

    def error(self, message: str) -> InstanceError:
        return InstanceError(message, line=self.line, field=self.field)


class Locate(Protocol):
    """Where `section[index].field` of the instance came from (`index` None: the section itself)."""

    def __call__(self, section: str, index: int | None = None, field: str | None = None) -> Location: ...


def json_path(section: str, index: int | None = None, field: str | None = None) -> str:
    path = section if index is None else f"{section}[{index}]"
    return path if field is None else f"{path}.{field}"


def locate_by_path(section: str, index: int | None = None, field: str | None = None) -> Location:
    """The `Locate` of inputs without line numbers: a JSON-style field path."""
    return Location(field=json_path(section, index, field))


@dataclass(frozen=True)
class Sizes:
    days: int
    periods_per_day: int
    courses: int
    rooms: int
    curricula: int
    unavailability: int


def check_sizes(sizes: Sizes, locate: Locate) -> None:
    _in_range(sizes.days, 1, MAX_DAYS, "days", locate("days"))
    _in_range(sizes.periods_per_day, 1, MAX_PERIODS_PER_DAY, "periods per day", locate("periods_per_day"))
    _in_range(sizes.courses, 1, MAX_COURSES, "the number of courses", locate("courses"))
    _in_range(sizes.rooms, 1, MAX_ROOMS, "the number of rooms", locate("rooms"))
    _in_range(sizes.curricula, 0, MAX_CURRICULA, "the number of curricula", locate("curricula"))
    _in_range(sizes.unavailability, 0, MAX_UNAVAILABILITY, "the number of unavailability constraints",
              locate("unavailability"))


def check_contents(instance: Instance, locate: Locate) -> None:
    if not instance.name.strip() or "\n" in instance.name or "\r" in instance.name:
        raise locate("name").error(f"the name must be one non-empty line, found {shown(instance.name)}")
    check_sizes(
        Sizes(instance.days, instance.periods_per_day, len(instance.courses), len(instance.rooms),
              len(instance.curricula), len(instance.unavailability)),
        locate,
    )
    _check_courses(instance.courses, locate)
    _check_rooms(instance.rooms, locate)
    known = {c.id for c in instance.courses}
    _check_curricula(instance.curricula, known, locate)
    _check_unavailability(instance.unavailability, known, instance, locate)


def _check_courses(courses: tuple[Course, ...], locate: Locate) -> None:
    """Zero students, or more working days than the week has, are odd but priced by the
    official validator, so they are accepted here and reported by the pre-solve check."""
    seen: set[str] = set()
    total = 0
    for i, c in enumerate(courses):
        _check_id(c.id, "course", seen, locate("courses", i, "id"))
        _check_id(c.teacher, "teacher", None, locate("courses", i, "teacher"))
        what = f"course {c.id}"
        _in_range(c.lectures, 1, MAX_LECTURES, f"lectures of {what}", locate("courses", i, "lectures"))
        _in_range(c.students, 0, MAX_HEADCOUNT, f"students of {what}", locate("courses", i, "students"))
        _in_range(c.min_working_days, 0, MAX_HEADCOUNT, f"min_working_days of {what}",
                  locate("courses", i, "min_working_days"))
        total += c.lectures
        if total > MAX_LECTURES:
            raise locate("courses", i, "lectures").error(
                f"with course {c.id} the lectures add up to {total}, "
                f"more than this service accepts (at most {MAX_LECTURES})")


def _check_rooms(rooms: tuple[Room, ...], locate: Locate) -> None:
    """Capacity 0 is accepted: real files have such rooms and the validator prices them."""
    seen: set[str] = set()
    for i, r in enumerate(rooms):
        _check_id(r.id, "room", seen, locate("rooms", i, "id"))
        _in_range(r.capacity, 0, MAX_HEADCOUNT, f"capacity of room {r.id}", locate("rooms", i, "capacity"))


def _check_curricula(curricula: tuple[Curriculum, ...], known: set[str], locate: Locate) -> None:
    seen: set[str] = set()
    for i, q in enumerate(curricula):
        _check_id(q.id, "curriculum", seen, locate("curricula", i, "id"))
        repeated = Counter(q.courses)
        for j, cid in enumerate(q.courses):
            where = locate("curricula", i, f"courses[{j}]")
            if cid not in known:
                raise where.error(f"curriculum {q.id} names unknown course {named(cid)}")
            if repeated[cid] > 1:
                raise where.error(f"curriculum {q.id} lists course {cid} twice")


def _check_unavailability(rows: tuple[Unavailability, ...], known: set[str], instance: Instance,
                          locate: Locate) -> None:
    for i, u in enumerate(rows):
        if u.course not in known:
            raise locate("unavailability", i, "course").error(f"unavailability names unknown course {named(u.course)}")
        if not 0 <= u.day < instance.days:
            raise locate("unavailability", i, "day").error(
                f"day {u.day} of course {u.course} is outside the week (days 0..{instance.days - 1})")
        if not 0 <= u.period < instance.periods_per_day:
            raise locate("unavailability", i, "period").error(
                f"period {u.period} of course {u.course} is outside the day "
                f"(periods 0..{instance.periods_per_day - 1})")


def _check_id(value: str, kind: str, seen: set[str] | None, where: Location) -> None:
    if not _TOKEN.fullmatch(value) or len(value) > MAX_ID_CHARS:
        raise where.error(f"a {kind} id must be one word of at most {MAX_ID_CHARS} characters, found {shown(value)}")
    if seen is not None:
        if value in seen:
            raise where.error(f"duplicate {kind} id {value}")
        seen.add(value)


def _in_range(value: int, low: int, high: int, what: str, where: Location) -> None:
    if value < 0:
        raise where.error(f"{what} must not be negative, found {value}")
    if value < low:
        raise where.error(f"{what} must be at least {low}, found {value}")
    if value > high:
        raise where.error(f"{what} is {value}, more than this service accepts (at most {high})")
