"""JSON forms: round trips, and errors that name the JSON field path."""

from __future__ import annotations

import copy
import json

import pytest

from solver.check import check
from solver.ctt import parse_ctt, parse_sol
from solver.errors import InstanceError
from solver.evaluate import evaluate
from solver.jsonform import instance_from_json, instance_to_json, timetable_from_json, timetable_to_json
from solver.timetable import UNPLACED, Timetable
from tests.conftest import CTT_DIR


@pytest.fixture(scope="module")
def comp01():
    return parse_ctt((CTT_DIR / "instances" / "comp01.ctt").read_text())


@pytest.fixture(scope="module")
def comp01_good(comp01) -> Timetable:
    text = (CTT_DIR / "validator-cases" / "comp01-good.sol").read_text()
    return Timetable.from_assignments(comp01, parse_sol(text, comp01))


def test_instance_round_trip_through_json_text(comp01) -> None:
    data = json.loads(json.dumps(instance_to_json(comp01)))
    assert instance_from_json(data) == comp01
    assert data["courses"][0] == {"id": "c0001", "teacher": "t000", "lectures": 6, "min_working_days": 4,
                                  "students": 130}
    assert data["unavailability"][0] == {"course": "c0001", "day": 4, "period": 0}


def _changed(instance, change) -> dict:
    data = copy.deepcopy(instance_to_json(instance))
    change(data)
    return data


BROKEN = [
    (lambda d: d.update(days="5"), "days", "must be an integer, found a string '5'"),
    (lambda d: d.update(days=True), "days", "must be an integer, found a boolean"),
    (lambda d: d.update(days=0), "days", "days must be at least 1"),
    (lambda d: d.pop("rooms"), "instance", "missing field 'rooms'"),
    (lambda d: d.update(colour="red"), "instance", "unknown field 'colour'"),
    (lambda d: d.update(courses={}), "courses", "must be a list, found an object"),
    (lambda d: d["courses"][3].update(lectures="x"), "courses[3].lectures", "must be an integer"),
    (lambda d: d["courses"][3].update(lectures=2.5), "courses[3].lectures", "must be an integer, found a number 2.5"),
    (lambda d: d["courses"][3].update(lectures=0), "courses[3].lectures", "must be at least 1"),
    (lambda d: d["courses"][3].pop("teacher"), "courses[3]", "missing field 'teacher'"),
    (lambda d: d["courses"][2].update(id="c 1"), "courses[2].id", "one word"),
    (lambda d: d["courses"][1].update(id="c0001"), "courses[1].id", "duplicate course id c0001"),
    (lambda d: d["rooms"].__setitem__(2, 7), "rooms[2]", "must be an object, found a number 7"),
    (lambda d: d["rooms"][2].update(id="rB"), "rooms[2].id", "duplicate room id rB"),
    (lambda d: d["rooms"][2].update(capacity=-1), "rooms[2].capacity", "must not be negative"),
    (lambda d: d["curricula"][0]["courses"].__setitem__(1, "c0999"), "curricula[0].courses[1]",
     "curriculum q000 names unknown course c0999"),
    (lambda d: d["curricula"][0]["courses"].__setitem__(1, None), "curricula[0].courses[1]", "must be a string"),
    (lambda d: d["unavailability"][0].update(day=9), "unavailability[0].day", "outside the week"),
    (lambda d: d.update(name=""), "name", "one non-empty line"),
    (lambda d: d.update(courses=[d["courses"][0]] * 5001), "courses", "at most 5000"),
]


@pytest.mark.parametrize(("change", "path", "phrase"), BROKEN, ids=[f"{b[1]}:{b[2][:30]}" for b in BROKEN])
def test_bad_instance_json_names_the_path(comp01, change, path: str, phrase: str) -> None:
    with pytest.raises(InstanceError) as caught:
        instance_from_json(_changed(comp01, change))
    assert caught.value.field == path and caught.value.line is None
    assert phrase in caught.value.message
    assert str(caught.value) == f"{path}: {caught.value.message}"


ACCEPTED = [
    # (change, the warnings check gives): odd data the official validator accepts and prices.
    (lambda d: d["rooms"][2].update(capacity=0),
     ["Room rE has capacity 0: every lecture placed there costs its students."]),
    (lambda d: d["courses"][1].update(min_working_days=10),
     ["Course c0002 asks for 10 working days but the week has 5; at least 5 × 5 = 25 cost."]),
    (lambda d: d["courses"][1].update(students=0), []),
]


@pytest.mark.parametrize(("change", "warnings"), ACCEPTED, ids=["capacity 0", "10 working days", "0 students"])
def test_odd_instance_json_is_accepted_with_a_warning(comp01, change, warnings: list[str]) -> None:
    data = _changed(comp01, change)
    instance = instance_from_json(data)
    assert instance_to_json(instance) == data
    assert [(f.level, f.message) for f in check(instance)] == [("warning", w) for w in warnings]


def test_instance_json_must_be_an_object() -> None:
    with pytest.raises(InstanceError, match=r"^instance: must be an object, found a list$"):
        instance_from_json([])


def test_timetable_json_describes_each_lecture(comp01, comp01_good) -> None:
    cost = evaluate(comp01_good)
    data = json.loads(json.dumps(timetable_to_json(comp01_good, cost)))
    assert data["cost"] == {**cost.as_dict()} and data["cost"]["soft"] == 5
    assert len(data["lectures"]) == comp01.total_lectures and data["unplaced"] == []
    first = next(e for e in data["lectures"] if e["course"] == "c0001")
    assert first["teacher"] == "t000"
    assert first["curricula"] == [q.id for q in comp01.curricula if "c0001" in q.courses]
    assert timetable_from_json(data, comp01).period == comp01_good.period


def test_timetable_json_lists_unplaced_lectures(comp01, comp01_good) -> None:
    period, room = comp01_good.arrays()
    period[:2], room[:2] = UNPLACED, UNPLACED  # the first two lectures belong to c0001
    partial = Timetable.from_arrays(comp01, period, room)
    data = timetable_to_json(partial, evaluate(partial))
    assert data["unplaced"] == [{"course": "c0001"}, {"course": "c0001"}]
    assert data["cost"]["lectures"] == 2
    again = timetable_from_json(data, comp01)
    assert len(again.unplaced) == 2 and evaluate(again) == evaluate(partial)


@pytest.mark.parametrize(("entry", "path", "phrase"), [
    ({"course": "c0001", "room": "rZ", "day": 0, "period": 0}, "lectures[0].room", "unknown room rZ"),
    ({"course": "c9", "room": "rB", "day": 0, "period": 0}, "lectures[0].course", "unknown course c9"),
    ({"course": "c0001", "room": "rB", "day": 5, "period": 0}, "lectures[0].day", "between 0 and 4"),
    ({"course": "c0001", "room": "rB", "day": 0}, "lectures[0]", "missing field 'period'"),
    ({"course": "c0001", "room": "rB", "day": 0, "period": "1"}, "lectures[0].period", "must be an integer"),
])
def test_bad_timetable_json_names_the_path(comp01, entry: dict, path: str, phrase: str) -> None:
    with pytest.raises(InstanceError) as caught:
        timetable_from_json({"lectures": [entry]}, comp01)
    assert caught.value.field == path and phrase in caught.value.message


def test_timetable_json_refuses_extra_lectures(tiny_instance) -> None:
    entries = [{"course": "c3", "room": "rA", "day": 1, "period": p} for p in (0, 1)]
    with pytest.raises(InstanceError, match="course c3 has only 1 lecture") as caught:
        timetable_from_json({"lectures": entries}, tiny_instance)
    assert caught.value.field == "lectures[1]"
