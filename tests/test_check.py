"""Pre-solve findings on the tiny instance (2 days x 2 periods, 2 rooms), each triggered on purpose."""

from __future__ import annotations

from dataclasses import replace

import pytest

from solver.check import Finding, budget_for, check, lectures_within
from solver.ctt import parse_ctt
from solver.model import Course, Instance, Room, Unavailability
from tests.conftest import CTT_DIR

REAL_DIR = CTT_DIR / "real"
REAL_FILES = sorted(p.stem for p in REAL_DIR.glob("*.ctt"))
needs_real = pytest.mark.skipif(not REAL_DIR.is_dir(), reason=f"{REAL_DIR} is absent")


def _with_courses(instance: Instance, **changes: dict) -> Instance:
    """`changes` maps a course id to the fields to replace."""
    courses = tuple(replace(c, **changes.get(c.id, {})) for c in instance.courses)
    return replace(instance, courses=courses)


def _messages(instance: Instance, level: str) -> list[str]:
    return [f.message for f in check(instance) if f.level == level]


@pytest.mark.parametrize("name", [f"comp0{i}" for i in range(1, 8)])
def test_real_instances_have_no_errors(name: str) -> None:
    instance = parse_ctt((CTT_DIR / "instances" / f"{name}.ctt").read_text())
    assert _messages(instance, "error") == []


def test_tiny_instance_is_clean(tiny_instance) -> None:
    assert check(tiny_instance) == ()


def test_course_with_more_lectures_than_available_periods(tiny_instance) -> None:
    # c3 is unavailable at day 0 period 0, so 3 of the 4 periods remain.
    broken = _with_courses(tiny_instance, c3={"lectures": 4})
    assert "Course c3 needs 4 lectures but only 3 periods are available to it." in _messages(broken, "error")


def test_teacher_with_more_lectures_than_periods(tiny_instance) -> None:
    # t1 teaches c1 and c3: 3 + 2 lectures for 4 periods; neither course alone is too big.
    broken = _with_courses(tiny_instance, c1={"lectures": 3}, c3={"lectures": 2})
    errors = _messages(broken, "error")
    assert "Teacher t1 teaches 5 lectures but only 4 periods are available to its courses." in errors
    assert not any(m.startswith("Course") for m in errors)


def test_curriculum_with_more_lectures_than_periods(tiny_instance) -> None:
    broken = _with_courses(tiny_instance, c2={"lectures": 3})
    assert _messages(broken, "error") == [
        "Curriculum q1 has 5 lectures but only 4 periods are available to its courses."]


def test_group_check_counts_only_periods_open_to_some_member(tiny_instance) -> None:
    closed = tuple(Unavailability(c, 0, 0) for c in ("c1", "c2"))
    broken = replace(tiny_instance, unavailability=tiny_instance.unavailability + closed)
    assert _messages(broken, "error") == [
        "Curriculum q1 has 4 lectures but only 3 periods are available to its courses."]


def test_more_lectures_than_room_slots(tiny_instance) -> None:
    one_room = replace(tiny_instance, rooms=tiny_instance.rooms[:1])
    assert _messages(one_room, "error") == ["The instance has 5 lectures but only 1 room x 4 periods = 4 room slots."]


def test_course_larger_than_every_room_is_a_warning(tiny_instance) -> None:
    big = _with_courses(tiny_instance, c3={"students": 55})
    assert _messages(big, "error") == []
    assert _messages(big, "warning") == [
        "Course c3 has 55 students but the largest room holds 40; each of its lectures costs at least 15 "
        "(room capacity)."]


def test_min_working_days_above_available_days(tiny_instance) -> None:
    day0 = tuple(Unavailability("c1", 0, p) for p in range(2))
    broken = replace(tiny_instance, unavailability=tiny_instance.unavailability + day0)
    assert _messages(broken, "warning") == [
        "Course c1 asks for 2 working days but it is available on only 1 day; at least 1 × 5 = 5 cost."]


def test_min_working_days_above_lectures(tiny_instance) -> None:
    broken = _with_courses(tiny_instance, c3={"min_working_days": 2})
    assert _messages(broken, "warning") == [
        "Course c3 asks for 2 working days but it has only 1 lecture; at least 1 × 5 = 5 cost."]


def test_errors_come_before_warnings(tiny_instance) -> None:
    broken = replace(_with_courses(tiny_instance, c3={"students": 55}), rooms=tiny_instance.rooms[:1])
    levels = [f.level for f in check(broken)]
    assert levels == sorted(levels) and levels[0] == "error" and levels[-1] == "warning"
    assert all(isinstance(f, Finding) for f in check(broken))


def _instance(courses: list[Course], rooms: list[Room], days: int = 2, periods_per_day: int = 2) -> Instance:
    return Instance("made", days, periods_per_day, tuple(courses), tuple(rooms), (), ())


def _courses(n: int, lectures: int = 1, min_working_days: int = 1, students: int = 10) -> list[Course]:
    """`n` courses c1..cn, each with its own teacher so that no two conflict."""
    return [Course(f"c{i}", f"t{i}", lectures, min_working_days, students) for i in range(1, n + 1)]


@needs_real
def test_all_real_files_are_there() -> None:
    assert len(REAL_FILES) == 28


@needs_real
@pytest.mark.parametrize("name", REAL_FILES)
def test_real_university_files_parse_and_have_no_errors(name: str) -> None:
    instance = parse_ctt((REAL_DIR / f"{name}.ctt").read_text())
    findings = check(instance)
    assert _messages(instance, "error") == []
    assert all("\n" not in f.message for f in findings) and len(findings) <= 10


@needs_real
@pytest.mark.parametrize(("name", "warnings"), [
    ("EA01", ["Course c41 asks for 10 working days but the week has 5 and it has only 1 lecture; "
              "at least 9 × 5 = 45 cost."]),
    ("EA03", ["Room r17 has capacity 0: every lecture placed there costs its students.",
              "Room r151 has capacity 0: every lecture placed there costs its students."]),
    ("EA09", ["Room r160 has capacity 0: every lecture placed there costs its students.",
              "Room r161 has capacity 0: every lecture placed there costs its students."]),
])
def test_files_once_refused_are_read_and_explained(name: str, warnings: list[str]) -> None:
    instance = parse_ctt((REAL_DIR / f"{name}.ctt").read_text())
    assert _messages(instance, "error") == []
    assert _messages(instance, "warning") == warnings


def test_room_of_capacity_zero_is_a_warning() -> None:
    instance = _instance(_courses(2), [Room("big", 40), Room("none", 0)])
    assert check(instance) == (
        Finding("warning", "Room none has capacity 0: every lecture placed there costs its students."),)


def test_more_working_days_than_the_week_has() -> None:
    instance = _instance([Course("c1", "t1", 4, 7, 10)], [Room("r", 40)], days=2)
    assert _messages(instance, "warning") == [
        "Course c1 asks for 7 working days but the week has 2; at least 5 × 5 = 25 cost."]


def test_course_without_students_is_not_reported(tiny_instance) -> None:
    assert check(_with_courses(tiny_instance, c1={"students": 0}, c2={"students": 0})) == ()


def test_up_to_three_findings_of_a_kind_stay_separate() -> None:
    instance = _instance(_courses(3, lectures=2, min_working_days=3), [Room("r", 40)])
    assert [m.split(" asks")[0] for m in _messages(instance, "warning")] == ["Course c1", "Course c2", "Course c3"]


def test_many_findings_of_a_kind_become_one_line() -> None:
    rooms = [Room(f"r{i}", 0 if i < 5 else 40) for i in range(8)]
    instance = _instance(_courses(12, lectures=2, min_working_days=3), rooms)
    assert _messages(instance, "warning") == [
        "5 rooms have capacity 0, so every lecture placed there costs its students: r0, r1, r2, … (+2 more).",
        "12 courses ask for more working days than the week has; at least 60 cost in all: c1, c2, c3, … "
        "(+9 more).",
    ]


def test_kinds_collapse_separately_and_errors_too() -> None:
    # c1..c5 are closed on day 0, so they cannot spread over 2 days; c6..c9 are fine.
    closed = tuple(Unavailability(f"c{i}", 0, p) for i in range(1, 6) for p in range(2))
    courses = _courses(5, lectures=2, min_working_days=2) + _courses(9, lectures=2)[5:]
    instance = replace(_instance(courses, [Room(f"r{i}", 40) for i in range(12)]), unavailability=closed)
    assert _messages(instance, "warning") == [
        "5 courses ask for more working days than they are available on; at least 25 cost in all: c1, c2, c3, … "
        "(+2 more)."]
    assert _messages(instance, "error") == []
    late = replace(instance, courses=tuple(replace(c, lectures=5) for c in instance.courses))
    assert _messages(late, "error") == [
        "9 courses need more lectures than they have available periods: c1, c2, c3, … (+6 more)."]


def test_oversized_courses_collapse_with_their_cost() -> None:
    instance = _instance(_courses(4, lectures=2, students=50), [Room("r", 40), Room("s", 40)])
    assert _messages(instance, "warning") == [
        "4 courses have more students than the largest room holds (40 seats); at least 80 cost in all: c1, c2, c3, … "
        "(+1 more)."]


@pytest.mark.parametrize(("budget", "lectures"), [
    (5, 1700), (60, 9000), (2.5, 850), (120, 18000), (300, 45000)])
def test_known_lectures_per_budget(budget: float, lectures: int) -> None:
    assert lectures_within(budget) == pytest.approx(lectures)
    assert budget_for(lectures) == pytest.approx(budget)


def _budget_warnings(lectures: int, time_limit: float | None) -> list[str]:
    one_course = _instance([Course("c1", "t1", lectures, 0, 0)], [Room("r", 40)])
    return [f.message for f in check(one_course, time_limit=time_limit) if "budget" in f.message]


def test_size_warning_names_lectures_budget_and_what_to_allow() -> None:
    assert _budget_warnings(20_000, 60) == [
        "This instance has 20,000 lectures; a 60 s budget is known to place about 9,000 lectures on one core — "
        "allow at least 134 s."]


@pytest.mark.parametrize(("budget", "largest_quiet", "allow"), [
    (60, 9000, 61), (5, 1700, 6), (120, 18000, 121)])
def test_size_warning_threshold(budget: float, largest_quiet: int, allow: int) -> None:
    assert _budget_warnings(largest_quiet, budget) == []
    assert _budget_warnings(largest_quiet + 1, budget)[0].endswith(f"allow at least {allow} s.")


def test_no_size_warning_without_a_budget() -> None:
    assert _budget_warnings(50_000, None) == []
