"""The construction: every lecture placed, hard-feasible, at the sizes of a whole university."""

from __future__ import annotations

import random
import time

from solver.construct import feasible_state
from solver.evaluate import evaluate
from solver.generate import generate
from solver.progress import never_stop
from solver.timetable import Timetable
from tests.test_cpsat import place, tiny


def construct(timetable: Timetable, seconds: float = 10.0) -> Timetable:
    return feasible_state(timetable, random.Random(0), time.monotonic() + seconds, never_stop).to_timetable()


def test_places_every_lecture_of_a_university_sized_instance() -> None:
    inst = generate(courses=400, rooms=60, curricula=130, periods_per_day=8, seed=2)
    assert inst.total_lectures > 1500
    seen: list[tuple[int, int]] = []
    tt = feasible_state(Timetable.empty(inst), random.Random(0), time.monotonic() + 30, never_stop,
                        lambda done, total: seen.append((done, total))).to_timetable()
    assert not tt.unplaced and evaluate(tt).hard == 0
    assert seen and seen[-1] == (inst.total_lectures, inst.total_lectures)


def test_ejects_a_lecture_that_blocks_the_only_periods_left() -> None:
    # b (teacher t1, like a) can only teach on day 0; a sits there and must move to day 1.
    inst = tiny(
        [("a", "t1", 2, 1, 10), ("b", "t1", 2, 1, 10)], [("r", 20)],
        unavailable=[("b", 1, 0), ("b", 1, 1)], days=2, periods_per_day=2,
    )
    tt = construct(place(inst, {0: (0, 0), 1: (2, 0)}))
    assert not tt.unplaced and evaluate(tt).hard == 0
    assert sorted(tt.period[2:]) == [0, 1] and sorted(tt.period[:2]) == [2, 3]


def test_keeps_the_consistent_part_of_its_input() -> None:
    inst = tiny([("a", "t1", 2, 1, 10), ("b", "t2", 1, 1, 10)], [("r", 20), ("s", 20)])
    tt = construct(place(inst, {0: (3, 1), 1: (3, 1), 2: (3, 1)}))  # a twice in one period, b in a's room
    assert tt.period[0] == 3 and tt.room[0] == 1 and not tt.unplaced and evaluate(tt).hard == 0


def test_a_course_with_no_period_left_stays_unplaced_and_the_rest_is_placed() -> None:
    # c shares a teacher with a, whose two lectures fill the only periods c may use.
    inst = tiny(
        [("a", "t1", 2, 1, 10), ("b", "t2", 2, 1, 10), ("c", "t1", 1, 1, 10)], [("r", 20), ("s", 20)],
        unavailable=[("a", 0, 2), ("a", 0, 3), ("c", 0, 2), ("c", 0, 3)], days=1, periods_per_day=4,
    )
    began = time.monotonic()
    tt = construct(Timetable.empty(inst), seconds=60.0)
    cost = evaluate(tt)
    assert len(tt.unplaced) == 1 and cost.lectures == 1 and cost.hard == 1
    assert time.monotonic() - began < 30.0  # it gives up on the impossible, it does not wait for the deadline
