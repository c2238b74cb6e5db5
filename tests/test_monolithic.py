"""The monolithic baseline: a known optimum, and a prompt stop."""

from __future__ import annotations

import time

from solver.evaluate import evaluate
from solver.monolithic import solve_monolithic
from solver.progress import never_stop
from tests.test_cpsat import load, stop_later, tiny


def test_reaches_the_optimum_of_a_small_case() -> None:
    # a needs 2 days, b one lecture, both in curriculum q; 2 days × 2 periods.
    # Spread a over both days and put b next to one of them: a's other lecture is
    # isolated (2). Any other placement costs more (a on one day: 5 + b isolated 2).
    inst = tiny([("a", "t1", 2, 2, 10), ("b", "t2", 1, 1, 10)], [("r", 20)],
                curricula={"q": ["a", "b"]}, days=2, periods_per_day=2)
    tt = solve_monolithic(inst, time_limit=5.0, workers=1, seed=0, should_stop=never_stop)
    cost = evaluate(tt)
    assert cost.hard == 0 and cost.soft == 2 and cost.curriculum_compactness == 2


def test_stop_request_returns_within_two_seconds() -> None:
    inst = load("comp01")
    stop, asked, timer = stop_later(1.5)
    tt = solve_monolithic(inst, time_limit=120.0, workers=1, seed=0, should_stop=stop.is_set)
    timer.cancel()
    assert asked and time.monotonic() - asked[0] < 2.0
    assert evaluate(tt).conflicts == 0
