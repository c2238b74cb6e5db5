"""The evaluator reproduces every figure the official ITC-2007 validator printed."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from solver.ctt import parse_ctt, parse_sol
from solver.evaluate import (
    COMPACTNESS_WEIGHT,
    Cost,
    course_costs,
    course_period_table,
    curriculum_costs,
    evaluate,
    evaluate_assignments,
    isolated_lectures,
)
from solver.model import Instance
from solver.timetable import Timetable
from tests.conftest import CTT_DIR

CASES = sorted(p.stem for p in (CTT_DIR / "validator-cases").glob("*.expected"))
CATEGORY = re.compile(r"^(?:Violations|Cost) of (\w+) \((?:hard|soft)\) : (\d+)$")
SUMMARY = re.compile(r"^Summary: (?:Violations = (\d+), )?Total Cost = (\d+)$")
FIELD_OF = {
    "Lectures": "lectures", "Conflicts": "conflicts", "Availability": "availability",
    "RoomOccupation": "room_occupation", "RoomCapacity": "room_capacity", "MinWorkingDays": "min_working_days",
    "CurriculumCompactness": "curriculum_compactness", "RoomStability": "room_stability",
}


@cache
def _instance(name: str) -> Instance:
    return parse_ctt((CTT_DIR / "instances" / f"{name}.ctt").read_text(), name)


def _expected(path: Path) -> tuple[Cost, int, int]:
    categories: dict[str, int] = {}
    summary = None
    for line in path.read_text().splitlines():
        if m := CATEGORY.match(line.strip()):
            categories[FIELD_OF[m[1]]] = int(m[2])
        elif m := SUMMARY.match(line.strip()):
            summary = (int(m[1] or 0), int(m[2]))
    assert len(categories) == 8 and summary is not None, f"unreadable {path.name}"
    return Cost(**categories), *summary


def test_all_validator_cases_are_present() -> None:
    assert len(CASES) == 28


@pytest.mark.parametrize("case", CASES)
def test_evaluator_matches_official_validator(case: str) -> None:
    instance = _instance(case.split("-")[0])
    assignments = parse_sol((CTT_DIR / "validator-cases" / f"{case}.sol").read_text(), instance)
    cost, hard, soft = _expected(CTT_DIR / "validator-cases" / f"{case}.expected")

    got = evaluate_assignments(instance, assignments)

    assert got == cost
    assert (got.hard, got.soft) == (hard, soft)
    if hard == 0:  # a feasible solution reads into a Timetable without loss
        assert evaluate(Timetable.from_assignments(instance, assignments)) == cost


@pytest.mark.parametrize("case", [c for c in CASES if c.endswith("-good")])
def test_each_curriculum_is_charged_its_isolated_lectures_and_its_courses_costs(case: str) -> None:
    """The GA's per-curriculum costs add up to the validator's figures: each curriculum's
    isolated lectures, plus its courses' own costs counted once per curriculum they belong to."""
    instance = _instance(case.split("-")[0])
    timetable = Timetable.from_assignments(
        instance, parse_sol((CTT_DIR / "validator-cases" / f"{case}.sol").read_text(), instance))
    cost, ix = evaluate(timetable), instance.index
    table = course_period_table(timetable)
    capacity, working_days, stability = course_costs(instance, table)
    assert (capacity.sum(), working_days.sum(), stability.sum()) == (
        cost.room_capacity, cost.min_working_days, cost.room_stability)
    per_course = capacity + working_days + stability
    charged = curriculum_costs(timetable)
    for q, members in enumerate(ix.curriculum_courses):
        alone = COMPACTNESS_WEIGHT * isolated_lectures(table >= 0, (members,), ix.periods_per_day)
        assert charged[q] == alone + sum(per_course[c] for c in members)
    assert charged.sum() == cost.curriculum_compactness + sum(per_course[c] * len(ix.curricula_of[c])
                                                               for c in range(ix.n_courses))
