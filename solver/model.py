"""The curriculum-based course timetabling problem (ITC-2007 track 3) as immutable values.

Names follow the `.ctt` format. `Instance.index` turns the values into dense
integer indices and numpy arrays, which every search stage uses on its hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

# One missing seat outweighs any number of empty ones (a room holds at most 100,000).
ROOM_FIT_MISSING_SEAT = 1_000_000


@dataclass(frozen=True)
class Course:
    id: str
    teacher: str
    lectures: int
    min_working_days: int
    students: int


@dataclass(frozen=True)
class Room:
    id: str
    capacity: int


@dataclass(frozen=True)
class Curriculum:
    id: str
    courses: tuple[str, ...]


@dataclass(frozen=True)
class Unavailability:
    course: str
    day: int
    period: int  # period of the day, from 0


@dataclass(frozen=True)
class Instance:
    name: str
    days: int
    periods_per_day: int
    courses: tuple[Course, ...]
    rooms: tuple[Room, ...]
    curricula: tuple[Curriculum, ...]
    unavailability: tuple[Unavailability, ...]

    @property
    def periods(self) -> int:
        return self.days * self.periods_per_day

    @property
    def total_lectures(self) -> int:
        return sum(c.lectures for c in self.courses)

    @cached_property
    def index(self) -> Index:
        # cached_property writes to __dict__ directly, so it works on a frozen dataclass.
        return Index.build(self)


@dataclass(frozen=True, eq=False)
class Index:
    """Dense indices and arrays derived from an `Instance`.

    Courses, rooms, curricula and teachers are numbered in instance order.
    Lectures are numbered course by course: course `c` owns lectures
    `first_lecture[c] .. first_lecture[c + 1] - 1`. A period is
    `day * periods_per_day + period_of_day`.
    """

    course_ids: tuple[str, ...]
    room_ids: tuple[str, ...]
    curriculum_ids: tuple[str, ...]
    teacher_ids: tuple[str, ...]
    course_pos: dict[str, int]
    room_pos: dict[str, int]
    days: int
    periods_per_day: int
    lectures: np.ndarray  # int[C]
    min_days: np.ndarray  # int[C]
    students: np.ndarray  # int[C]
    teacher: np.ndarray  # int[C]
    capacity: np.ndarray  # int[R]
    capacity_penalty: np.ndarray  # int[C, R]: students above capacity
    first_lecture: np.ndarray  # int[C + 1]
    lecture_course: np.ndarray  # int[L]
    curricula_of: tuple[tuple[int, ...], ...]  # per course
    curriculum_courses: tuple[tuple[int, ...], ...]  # per curriculum
    conflict: np.ndarray  # bool[C, C]: shared teacher or curriculum, False on the diagonal
    unavailable: np.ndarray  # bool[C, P]

    @cached_property
    def room_fit(self) -> np.ndarray:
        """float[C, R], lower fits better: seats missing first, then seats left empty
        (best fit keeps the large rooms for the large courses)."""
        over = np.maximum(self.students[:, None] - self.capacity[None, :], 0)
        empty = np.maximum(self.capacity[None, :] - self.students[:, None], 0)
        return over * float(ROOM_FIT_MISSING_SEAT) + empty

    @property
    def n_courses(self) -> int:
        return len(self.course_ids)

    @property
    def n_rooms(self) -> int:
        return len(self.room_ids)

    @property
    def n_periods(self) -> int:
        return self.days * self.periods_per_day

    @property
    def n_lectures(self) -> int:
        return int(self.first_lecture[-1])

    def day_of(self, period: int) -> int:
        return period // self.periods_per_day

    @staticmethod
    def build(instance: Instance) -> Index:
        course_ids = tuple(c.id for c in instance.courses)
        course_pos = {cid: i for i, cid in enumerate(course_ids)}
        room_ids = tuple(r.id for r in instance.rooms)
        teacher_ids = tuple(dict.fromkeys(c.teacher for c in instance.courses))
        teacher_pos = {t: i for i, t in enumerate(teacher_ids)}
        n_c, n_p = len(course_ids), instance.periods

        lectures = np.array([c.lectures for c in instance.courses], dtype=np.int64)
        students = np.array([c.students for c in instance.courses], dtype=np.int64)
        capacity = np.array([r.capacity for r in instance.rooms], dtype=np.int64)
        teacher = np.array([teacher_pos[c.teacher] for c in instance.courses], dtype=np.int64)
        first_lecture = np.concatenate(([0], np.cumsum(lectures))).astype(np.int64)

        curriculum_courses = tuple(
            tuple(dict.fromkeys(course_pos[cid] for cid in q.courses)) for q in instance.curricula
        )
        curricula_of: list[list[int]] = [[] for _ in range(n_c)]
        for q, members in enumerate(curriculum_courses):
            for c in members:
                curricula_of[c].append(q)

        conflict = teacher[:, None] == teacher[None, :]
        for members in curriculum_courses:
            idx = np.array(members, dtype=np.int64)
            conflict[np.ix_(idx, idx)] = True
        np.fill_diagonal(conflict, False)

        unavailable = np.zeros((n_c, n_p), dtype=bool)
        for u in instance.unavailability:
            unavailable[course_pos[u.course], u.day * instance.periods_per_day + u.period] = True

        return Index(
            course_ids=course_ids,
            room_ids=room_ids,
            curriculum_ids=tuple(q.id for q in instance.curricula),
            teacher_ids=teacher_ids,
            course_pos=course_pos,
            room_pos={rid: i for i, rid in enumerate(room_ids)},
            days=instance.days,
            periods_per_day=instance.periods_per_day,
            lectures=lectures,
            min_days=np.array([c.min_working_days for c in instance.courses], dtype=np.int64),
            students=students,
            teacher=teacher,
            capacity=capacity,
            capacity_penalty=np.maximum(0, students[:, None] - capacity[None, :]),
            first_lecture=first_lecture,
            lecture_course=np.repeat(np.arange(n_c, dtype=np.int64), lectures),
            curricula_of=tuple(tuple(qs) for qs in curricula_of),
            curriculum_courses=curriculum_courses,
            conflict=conflict,
            unavailable=unavailable,
        )
