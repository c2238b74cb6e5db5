"""The evaluator reproduces every figure the official ITC-2007 validator printed."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from solver.ctt import parse_ctt, parse_sol
from solver.evaluate import Cost, evaluate, evaluate_assignments
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
