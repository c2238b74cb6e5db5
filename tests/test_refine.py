"""refine: never worse, really improves, stops on request, learns over several operators."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from solver.construct import feasible_state
from solver.ctt import parse_ctt
from solver.evaluate import Cost, evaluate
from solver.generate import generate
from solver import kernel
from solver.refine import (
    HEAT_BOUNDS,
    HOT_SECONDS_PER_LECTURE,
    T_END,
    T_START,
    Annealer,
    LocalSearch,
    Schedule,
    SharedBest,
    _Best,
    heat_scale,
    long_anneal_heat,
    refine,
)
from solver.state import SearchState
from solver.timetable import Timetable
from solver.window import reoptimize_window
from tests.conftest import CTT_DIR


def comp01() -> Timetable:
    inst = parse_ctt((CTT_DIR / "instances" / "comp01.ctt").read_text())
    return feasible_state(Timetable.empty(inst), random.Random(0), time.monotonic() + 10, lambda: False).to_timetable()


def test_improves_a_greedy_start_and_reports_sparingly() -> None:
    start = comp01()
    calls: list[tuple[float, int, int, Cost, bool]] = []
    t0 = time.monotonic()
    out = refine(start, time_limit=3, seed=1, on_iteration=lambda d, n, c, tt: calls.append((time.monotonic(), d, n, c, tt is not None))).timetable
    seconds = time.monotonic() - t0
    assert evaluate(out).hard == 0
    assert evaluate(out).soft < evaluate(start).soft
    assert seconds < 4
    assert len(calls) <= 10 * seconds + 2
    assert all(d <= n for _, d, n, _, _ in calls)
    assert calls[-1][3] == evaluate(out)  # the last report names the cost returned
    assert any(improved for *_, improved in calls)


def test_counts_the_moves_it_proposes_and_accepts() -> None:
    out = refine(comp01(), time_limit=1, seed=3)
    moves = out.moves
    assert 0 < moves.accepted < moves.proposed and 0.5 < moves.seconds < 1.5
    assert sum(p for p, _, _ in moves.by_operator.values()) == moves.proposed
    assert sum(a for _, a, _ in moves.by_operator.values()) == moves.accepted
    assert all(a <= p and s >= 0 for p, a, s in moves.by_operator.values())
    assert moves.proposed_per_second == moves.proposed / moves.seconds


@pytest.mark.parametrize("workers", [1, 2])
def test_stops_as_soon_as_its_best_costs_nothing(workers: int) -> None:
    inst = generate(courses=6, rooms=3, curricula=2, seed=1)  # optimum 0; the construction leaves 96
    start = feasible_state(Timetable.empty(inst), random.Random(0), time.monotonic() + 10, lambda: False).to_timetable()
    assert evaluate(start).soft > 0
    t0 = time.monotonic()
    out = refine(start, time_limit=30, seed=0, workers=workers)  # with two, one chain's 0 ends both
    assert time.monotonic() - t0 < 5 and evaluate(out.timetable) == Cost()
    again = refine(out.timetable, time_limit=30, seed=0)
    assert again.timetable == out.timetable and again.moves.proposed == 0


def test_places_unplaced_lectures_and_is_never_worse() -> None:
    inst = generate(courses=10, rooms=3, curricula=4, seed=3)
    out = refine(Timetable.empty(inst), time_limit=1, seed=0).timetable
    assert evaluate(out).hard == 0
    again = refine(out, time_limit=1, seed=2).timetable
    assert evaluate(again).key <= evaluate(out).key


def test_stops_within_a_second_of_the_request() -> None:
    asked = threading.Event()
    asked_at: list[float] = []

    def on_iteration(done: int, total: int, best: Cost, tt: Timetable | None) -> None:
        if done > 0 and not asked.is_set():
            asked_at.append(time.monotonic())
            asked.set()

    out = refine(comp01(), time_limit=60, seed=0, should_stop=asked.is_set, on_iteration=on_iteration).timetable
    assert time.monotonic() - asked_at[0] < 1.0
    assert evaluate(out).hard == 0


def test_bandit_uses_at_least_four_operators_and_prefers_some() -> None:
    rng = random.Random(0)
    start = comp01()
    now = time.monotonic()
    # A fixed number of batches, not of seconds: on a busy machine 3 s is fewer batches and
    # the shares have had less to learn from.
    batches = lambda: sum(search.bandit.uses) >= 150  # noqa: E731
    search = LocalSearch(start, rng, now, now + 120, batches, lambda *_: None)
    search.run()
    used = [name for name, n in zip(search.bandit.names, search.bandit.uses) if n > 0]
    assert len(used) >= 4, used
    shares = search.bandit.shares()
    assert max(shares) > 1.5 * min(shares)  # rewards moved the shares away from uniform
    assert evaluate(search.best.timetable(start)).soft == search.best.soft < evaluate(start).soft


def test_cpsat_window_neighbourhood_improves_or_leaves_state_alone() -> None:
    rng = random.Random(4)
    state = SearchState(comp01())
    results = []
    for _ in range(4):
        before = state.soft
        d = reoptimize_window(state, rng, time_limit=1.0, workers=1, should_stop=lambda: False)
        results.append(d)
        assert d is None or (d < 0 and state.soft == before + d)
        assert state.hard == 0
        assert state.cost() == evaluate(state.to_timetable())
    assert any(d is not None for d in results)  # a greedy start leaves CP-SAT plenty to fix


def test_chains_meet_at_a_reheat_on_the_best_of_both() -> None:
    start = comp01()
    _, dynamic, _ = kernel.build(start)
    worse = _Best(dynamic[0], dynamic[1], 50)
    better_period = np.roll(dynamic[0], 1)  # any other arrays, to tell whose were taken
    shared = SharedBest(_Best(better_period, dynamic[1], 40))
    shared.exchange(worse)
    assert worse.soft == 40 and (worse.period == better_period).all()
    best = _Best(dynamic[0], dynamic[1], 30)
    shared.exchange(best)
    assert best.soft == 30 and (best.period == dynamic[0]).all(), "a better chain keeps its own"
    shared.exchange(worse)
    assert worse.soft == 30 and (worse.period == dynamic[0]).all(), "and the others get it next"


def test_two_workers_anneal_two_chains_and_hand_back_the_best() -> None:
    start = comp01()
    reporters: set[str] = set()
    out = refine(start, time_limit=1.5, seed=2, workers=2,
                 on_iteration=lambda *_: reporters.add(threading.current_thread().name))
    cost = evaluate(out.timetable)
    assert cost.hard == 0 and cost.soft < evaluate(start).soft
    assert reporters == {threading.current_thread().name}, "one chain reports, from the caller's thread"
    assert sum(p for p, _, _ in out.moves.by_operator.values()) == out.moves.proposed
    # Two chains' operator time in one chain's wall time: both searched for the whole run.
    assert sum(s for _, _, s in out.moves.by_operator.values()) > 1.2 * out.moves.seconds


def test_a_reheat_never_starts_hotter_than_the_last_cycle() -> None:
    # A stall cuts a cycle short while it is still hot: four times that heat must not climb
    # above the last start, or a good input would be left further behind at every reheat.
    annealer = Annealer(0.0, 100.0, Schedule(start=1.5, end=0.15), first_cycle=50.0)
    starts = []
    for k in range(1, 6):
        annealer.reheat(k * 2.0)
        starts.append(annealer.t0)
    assert all(later <= earlier for earlier, later in zip([1.5] + starts, starts))
    assert min(starts) >= 2 * 0.15


def test_the_heat_follows_the_cost_per_lecture_within_its_bounds() -> None:
    low, high = HEAT_BOUNDS
    scales = [heat_scale(soft, 100) for soft in (0, 1, 10, 25, 100, 1000, 100_000)]
    assert scales == sorted(scales)
    assert scales[0] == low and scales[-1] == high
    assert heat_scale(25, 100) == pytest.approx(1.0)  # at the reference cost the schedule is as written
    hot = Annealer(0.0, 100.0, Schedule(), first_cycle=50.0, scale=heat_scale(400, 100))
    plain = Annealer(0.0, 100.0, Schedule(), first_cycle=50.0)
    assert hot.at(10.0) == pytest.approx(plain.at(10.0) * heat_scale(400, 100))


def test_a_short_probe_then_one_anneal_over_the_time_left_that_a_stall_ends_only_once_cold() -> None:
    annealer = Annealer(0.0, 100.0, Schedule(start=1.5, end=0.15), first_cycle=10.0)
    assert annealer.probing and annealer.at(10.0) == pytest.approx(0.15)
    assert annealer.over(10.0, best_since=9.9), "the probe is over"
    assert annealer.over(5.0, best_since=0.0) is False, "no stall yet (2 s at least, 15 % of the time)"
    annealer.reheat(10.0, scale=2.0)
    assert not annealer.probing
    assert annealer.at(10.0) == pytest.approx(2.0 * 1.5), "as hot as the schedule starts, at the new scale"
    assert annealer.at(100.0) == pytest.approx(2.0 * 0.15), "and cold at the deadline"
    assert not annealer.over(50.0, best_since=10.0), "hot: the search may drift above its best"
    assert annealer.over(95.0, best_since=10.0), "cold and stalled"
    assert not annealer.over(95.0, best_since=94.0), "cold but still improving"
    assert annealer.over(100.0, best_since=99.9), "the time is up"


def test_a_probe_as_long_as_the_time_is_one_cycle_over_all_of_it() -> None:
    annealer = Annealer(0.0, 5.0, Schedule(probes=False), first_cycle=5.0)
    assert not annealer.probing and annealer.at(5.0) == pytest.approx(T_END)
    assert not annealer.over(2.5, best_since=0.0), "hot, and no probe to stall"


def test_the_long_anneal_is_as_hot_as_the_cost_it_follows_when_there_is_time_to_cool() -> None:
    start = comp01()
    lectures, soft = len(start.period), evaluate(start).soft
    plenty = 2 * HOT_SECONDS_PER_LECTURE * lectures

    def long_heat(seconds: float, heat_from: int | None = None) -> float:
        """The heat at the start of the long anneal, after a probe cut short at once."""
        search = LocalSearch(start, random.Random(0), 0.0, seconds, lambda: False, lambda *_: None, heat_from=heat_from)
        search._reheat(0.0)
        return search.annealer.at(0.0)

    low, _ = HEAT_BOUNDS
    assert long_heat(plenty) == pytest.approx(T_START * heat_scale(soft, lectures))
    assert long_heat(plenty, heat_from=4 * soft) == pytest.approx(T_START * heat_scale(4 * soft, lectures))
    assert long_heat(plenty, heat_from=0) == pytest.approx(T_START * low)
    # With a quarter of the time it takes to cool, a quarter of the heat (within the bounds).
    short = HOT_SECONDS_PER_LECTURE * lectures / 4
    assert long_heat(short) == pytest.approx(T_START * max(low, heat_scale(soft, lectures) / 4))
    assert long_anneal_heat(soft, lectures, short) < long_anneal_heat(soft, lectures, plenty)
    assert long_anneal_heat(10**6, lectures, 0.0) == low


def test_without_a_probe_the_long_anneal_begins_at_once() -> None:
    """After the GA (whose founders probed), the refinement's first cycle is the long anneal."""
    start = comp01()
    seconds, heat_from = 30.0, 4 * evaluate(start).soft
    began = time.monotonic()
    search = LocalSearch(start, random.Random(0), began, began + seconds, lambda: False, lambda *_: None,
                         heat_from=heat_from, probe=False)
    probed = LocalSearch(start, random.Random(0), began, began + seconds, lambda: False, lambda *_: None,
                         heat_from=heat_from)
    assert search.annealer.cycle_end == search.annealer.cycle_start, "no probing cycle"
    assert probed.annealer.cycle_end > probed.annealer.cycle_start
    now = time.monotonic()
    assert search.annealer.over(now, search.best.when), "over before it starts: the long anneal comes next"
    search._reheat(now)
    lectures = len(start.period)
    assert not search.annealer.probing and search.annealer.cycle_end == began + seconds
    assert search.annealer.at(now) == pytest.approx(T_START * long_anneal_heat(heat_from, lectures, began + seconds - now))
