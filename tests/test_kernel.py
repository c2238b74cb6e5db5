"""The compiled search kernel: every move keeps hard violations at zero and reports the
exact change of the official cost; its counters always equal a rebuild from scratch."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from solver import kernel
from solver.construct import feasible_state
from solver.evaluate import evaluate
from solver.timetable import Timetable
from tests.test_state import INSTANCES, instance

OPS = {"slot": kernel.SLOT, "room": kernel.ROOM, "course_rooms": kernel.COURSE_ROOMS, "kempe": kernel.KEMPE}


def start(name: str, seed: int) -> Timetable:
    inst = instance(name)
    state = feasible_state(Timetable.empty(inst), random.Random(seed), time.monotonic() + 10, lambda: False)
    assert state.hard == 0
    return state.to_timetable()


def current(tt: Timetable, dynamic: tuple) -> Timetable:
    return kernel.timetable_of(tt.instance, dynamic[0], dynamic[1])


@pytest.mark.parametrize("name", list(INSTANCES))
@pytest.mark.parametrize("op", sorted(OPS))
def test_each_move_reports_its_exact_delta_over_a_long_random_run(name: str, op: str) -> None:
    tt = start(name, seed=3)
    static, dynamic, scratch = kernel.build(tt)
    kernel.seed(7)
    before, applied = evaluate(tt).soft, 0
    for i in range(900):
        # Hot slot moves interleaved keep scattering the timetable, so that each
        # neighbourhood meets every kind of case (swaps across days, shared curricula...);
        # they are checked too.
        move = OPS[op] if i % 3 else kernel.SLOT
        d = kernel.step(static, dynamic, scratch, move, 50.0 if i < 600 else 0.5)
        after = evaluate(current(tt, dynamic))
        assert after.hard == 0
        assert after.soft == kernel.soft(dynamic[9])
        if d == kernel.DROPPED:
            assert after.soft == before  # a refused or impossible move leaves no trace
        else:
            applied += move == OPS[op]
            assert after.soft - before == d
        before = after.soft
    one_lecture_each = tt.instance.index.lectures.max() == 1  # no course can use two rooms
    assert applied > 0 or (op == "course_rooms" and one_lecture_each), f"{op} never applied on {name}"
    rebuilt = kernel.build(current(tt, dynamic))[1]
    for kept, fresh in zip(dynamic, rebuilt):
        assert np.array_equal(kept, fresh)


def test_anneal_keeps_the_best_it_passed_and_stops_at_zero() -> None:
    tt = start("comp01", seed=1)
    static, dynamic, scratch = kernel.build(tt)
    kernel.seed(1)
    best_period, best_room = dynamic[0].copy(), dynamic[1].copy()
    best = np.array([kernel.soft(dynamic[9])])
    for op in OPS.values():
        n, accepted, gained = kernel.anneal(static, dynamic, scratch, op, 20_000, 5.0, 0.5, best_period, best_room, best)
        assert n == 20_000 and 0 < accepted <= n and gained > 0
        assert evaluate(current(tt, dynamic)).soft >= best[0]
        assert evaluate(kernel.timetable_of(tt.instance, best_period, best_room)).soft == best[0]
    assert best[0] < evaluate(tt).soft


def test_refuses_an_incomplete_or_clashing_timetable() -> None:
    tt = start("tiny", seed=0)
    with pytest.raises(ValueError, match="placed"):
        kernel.build(Timetable.empty(tt.instance))
    clash = Timetable(tt.instance, (tt.period[0],) * len(tt.period), tt.room)
    with pytest.raises(ValueError, match="hard-feasible"):
        kernel.build(clash)
