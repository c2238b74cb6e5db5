"""SearchState keeps the exact official cost through any sequence of changes."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.construct import feasible_state
from solver.ctt import parse_ctt
from solver.evaluate import evaluate
from solver.generate import generate
from solver.model import Instance
from solver.state import SearchState
from solver.timetable import UNPLACED, Timetable
from tests.conftest import CTT_DIR, TINY_CTT

INSTANCES = {
    "tiny": lambda: parse_ctt(TINY_CTT),
    "generated": lambda: generate(courses=12, rooms=3, curricula=4, days=3, periods_per_day=4, seed=1),
    "one_period_days": lambda: generate(courses=6, rooms=2, curricula=3, days=3, periods_per_day=1, seed=1),
    "comp01": lambda: parse_ctt((CTT_DIR / "instances" / "comp01.ctt").read_text()),
}
_cache: dict[str, Instance] = {}


def instance(name: str) -> Instance:
    if name not in _cache:
        _cache[name] = INSTANCES[name]()
    return _cache[name]


def random_timetable(inst: Instance, rng: random.Random) -> Timetable:
    """Every lecture somewhere or nowhere: clashes, duplicates and unavailability included."""
    ix = inst.index
    period = [rng.randrange(-1, ix.n_periods) for _ in range(ix.n_lectures)]
    room = [rng.randrange(ix.n_rooms) if p != UNPLACED else UNPLACED for p in period]
    return Timetable.from_arrays(inst, period, room)


ops = st.lists(
    st.tuples(st.sampled_from(["move", "unplace", "place"]), st.integers(0, 10**6), st.integers(0, 10**6)),
    min_size=1,
    max_size=40,
)


@pytest.mark.parametrize("name", list(INSTANCES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), steps=ops)
def test_raw_changes_keep_cost_exact(name: str, seed: int, steps: list[tuple[str, int, int]]) -> None:
    inst = instance(name)
    rng = random.Random(seed)
    state = SearchState(random_timetable(inst, rng))
    assert state.cost() == evaluate(state.to_timetable())
    n_l, n_p, n_r = state.n_lectures, state.n_periods, state.n_rooms
    for kind, a, b in steps:
        l = a % n_l
        if kind == "move":
            state.move(l, b % (n_p + 1) - 1, b % n_r)
        elif kind == "unplace":
            state.unplace(l)
        elif state.period[l] == UNPLACED:
            state.place(l, b % n_p, b % n_r)
        assert state.cost() == evaluate(state.to_timetable())


def test_validator_reading_of_duplicate_lectures() -> None:
    """Two lectures of a course in one period count once, in the lower lecture's room."""
    inst = instance("tiny")
    state = SearchState(Timetable.empty(inst))
    state.place(1, 0, 1)
    state.place(0, 0, 0)
    assert state.cost() == evaluate(state.to_timetable())
    assert state.cost().lectures == inst.index.n_lectures - 1
    state.unplace(0)
    assert state.cell_room[0] == 1
    assert state.cost() == evaluate(state.to_timetable())
