"""The synthetic generator: deterministic, valid, realistic in shape, and feasible by construction."""

from __future__ import annotations

from collections import Counter

import pytest

from solver.check import check
from solver.ctt import format_ctt, parse_ctt
from solver.errors import InstanceError
from solver.evaluate import evaluate
from solver.generate import generate, generate_with_witness
from solver.jsonform import instance_from_json, instance_to_json

SHAPES = [
    dict(courses=30, rooms=6, curricula=14),
    dict(courses=130, rooms=20, curricula=77, periods_per_day=5),
    dict(courses=54, rooms=9, curricula=139, days=6, periods_per_day=6),
    dict(courses=600, rooms=60, curricula=400, seed=7),
    dict(courses=30, rooms=1, curricula=10),  # every room slot may be needed
]


def test_same_seed_same_instance_other_seed_other_instance() -> None:
    a = generate(courses=40, rooms=8, curricula=20, seed=1)
    assert generate(courses=40, rooms=8, curricula=20, seed=1) == a
    assert format_ctt(generate(courses=40, rooms=8, curricula=20, seed=1)) == format_ctt(a)
    assert generate(courses=40, rooms=8, curricula=20, seed=2) != a


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items()))
def test_generated_instance_is_valid_and_feasible(shape: dict) -> None:
    instance, witness = generate_with_witness(**shape)

    assert parse_ctt(format_ctt(instance)) == instance
    assert instance_from_json(instance_to_json(instance)) == instance
    assert [f for f in check(instance) if f.level == "error"] == []
    assert not witness.unplaced
    assert evaluate(witness).hard == 0
    assert len(instance.courses) == shape["courses"] and len(instance.rooms) == shape["rooms"]
    assert len(instance.curricula) == shape["curricula"]


def test_shapes_are_realistic() -> None:
    instance = generate(courses=300, rooms=30, curricula=200, seed=3)
    per_teacher = Counter(c.teacher for c in instance.courses)
    assert set(per_teacher.values()) == {1, 2, 3}
    sizes = Counter(len(q.courses) for q in instance.curricula)
    assert max(sizes) <= 6 and sum(n for size, n in sizes.items() if size >= 3) >= 0.9 * len(instance.curricula)
    lectures = [c.lectures for c in instance.courses]
    assert min(lectures) >= 1 and len(set(lectures)) >= 4
    capacities = sorted(r.capacity for r in instance.rooms)
    assert capacities[0] < 50 and capacities[-1] > 120
    fitting = sum(c.students <= capacities[-1] for c in instance.courses)
    assert fitting >= 0.9 * len(instance.courses)
    assert 0 < len(instance.unavailability) < len(instance.courses) * instance.periods
    assert instance.total_lectures <= len(instance.rooms) * instance.periods


def test_witness_meets_min_working_days() -> None:
    instance, witness = generate_with_witness(courses=100, rooms=15, curricula=50, seed=5)
    # min_working_days is at most the days the witness uses, so that cost is zero.
    assert evaluate(witness).min_working_days == 0
    assert any(c.min_working_days >= 3 for c in instance.courses)


@pytest.mark.parametrize(("args", "field", "phrase"), [
    (dict(courses=31, rooms=1, curricula=0), "courses", "31 courses do not fit in 1 room x 30 periods"),
    (dict(courses=10, rooms=2, curricula=3, days=20), "days", "at most 14"),
    (dict(courses=0, rooms=2, curricula=3), "courses", "must be at least 1"),
    (dict(courses=10, rooms=2000, curricula=3), "rooms", "at most 1000"),
])
def test_impossible_requests_are_refused(args: dict, field: str, phrase: str) -> None:
    with pytest.raises(InstanceError) as caught:
        generate(**args)
    assert caught.value.field == field and phrase in caught.value.message
