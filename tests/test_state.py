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
from solver.neighbourhoods import OPERATORS
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
    st.tuples(st.sampled_from(["move", "swap", "unplace", "place"]), st.integers(0, 10**6), st.integers(0, 10**6)),
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
            p, r = b % (n_p + 1) - 1, b % n_r
            predicted = state.move_delta(l, p, r) if state.period[l] != UNPLACED and p != UNPLACED else None
            before = state.soft
            state.move(l, p, r)
            if predicted is not None:
                assert state.soft - before == predicted
        elif kind == "swap":
            before, predicted = state.soft, state.swap_delta(l, b % n_l)
            assert state.soft == before  # asking for a delta changes nothing
            state.swap(l, b % n_l)
            assert state.soft - before == predicted
        elif kind == "unplace":
            state.unplace(l)
        elif state.period[l] == UNPLACED:
            state.place(l, b % n_p, b % n_r)
        assert state.cost() == evaluate(state.to_timetable())


@pytest.mark.parametrize("name", ["generated", "comp01"])
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_feasible_moves_keep_hard_zero_and_deltas_exact(name: str, seed: int) -> None:
    rng = random.Random(seed)
    state = feasible_state(Timetable.empty(instance(name)), rng, time.monotonic() + 5, lambda: False)
    assert state.hard == 0
    n_l, n_p, n_r = state.n_lectures, state.n_periods, state.n_rooms
    for _ in range(300):
        l, before = rng.randrange(n_l), state.soft
        if rng.random() < 0.5:
            p, r = rng.randrange(n_p), rng.randrange(n_r)
            if not state.can_move(l, p, r):
                continue
            d = state.move_delta(l, p, r)
            state.move(l, p, r)
        else:
            l2 = rng.randrange(n_l)
            if not state.can_swap(l, l2):
                continue
            d = state.swap_delta(l, l2)
            state.swap(l, l2)
        assert state.soft - before == d
        assert state.hard == 0
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


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_each_neighbourhood_keeps_hard_zero_and_reports_its_exact_delta(operator: str) -> None:
    rng = random.Random(5)
    state = feasible_state(Timetable.empty(instance("comp01")), rng, time.monotonic() + 5, lambda: False)
    for _ in range(2000):  # scramble the constructed start so that every operator finds work
        OPERATORS["move"](state, rng, lambda _delta: True)
    applied = 0
    for _ in range(400):
        before = state.soft
        d = OPERATORS[operator](state, rng, lambda _delta: True)
        assert state.hard == 0
        if d is None:
            assert state.soft == before  # a refused or impossible move leaves no trace
            continue
        applied += 1
        assert state.soft - before == d
    assert applied > 0, f"{operator} never applied"
    assert state.cost() == evaluate(state.to_timetable())
