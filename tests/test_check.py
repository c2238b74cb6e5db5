"""Pre-solve findings on the tiny instance (2 days x 2 periods, 2 rooms), each triggered on purpose."""

from __future__ import annotations

from dataclasses import replace

import pytest

from solver.check import Finding, check
from solver.ctt import parse_ctt
from solver.model import Instance, Unavailability
from tests.conftest import CTT_DIR


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
        "Course c1 should spread over 2 days but is available on only 1 day; each missing day costs 5."]


def test_min_working_days_above_lectures(tiny_instance) -> None:
    broken = _with_courses(tiny_instance, c3={"min_working_days": 2})
    assert _messages(broken, "warning") == [
        "Course c3 should spread over 2 days but has only 1 lecture; each missing day costs 5."]


def test_errors_come_before_warnings(tiny_instance) -> None:
    broken = replace(_with_courses(tiny_instance, c3={"students": 55}), rooms=tiny_instance.rooms[:1])
    levels = [f.level for f in check(broken)]
    assert levels == sorted(levels) and levels[0] == "error" and levels[-1] == "warning"
    assert all(isinstance(f, Finding) for f in check(broken))
