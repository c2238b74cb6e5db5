"""How fast this machine runs the solver's kernel right now: a fixed workload, timed.

The bench's runs are long and gathered over several sittings, and machines differ between
sittings (the same code was seen at 0.5 and at 1.1 M moves per second on two days). A run's
cost depends on how much search its seconds buy, so runs compare fairly only when the
machine ran them at the same speed. Each run records this figure; the ablation compares
only variants whose speeds agree.
"""

from __future__ import annotations

import functools
import statistics
import time

import numpy as np

from solver import kernel
from solver.generate import generate_with_witness
from solver.timetable import Timetable

# Slot moves of the fixed workload, at one fixed temperature: about 0.6 s on a fast machine,
# long enough that the timer's and the scheduler's noise stay below 1 %.
MOVES = 500_000
TEMPERATURE = 1.0
KERNEL_SEED = 0
REPEATS = 3  # the median of three: one preempted repeat does not move it
# Two runs' speeds agree when they differ by at most this share of the faster one.
TOLERANCE = 0.10


@functools.cache
def _workload() -> Timetable:
    """A comp-sized synthetic instance and its hidden feasible timetable (the same every time)."""
    _, witness = generate_with_witness(courses=60, rooms=10, curricula=30, seed=KERNEL_SEED)
    return witness


def kernel_speed() -> float:
    """Million slot moves per second of the kernel on the fixed workload, here and now."""
    kernel.warm_up()
    rates = []
    for _ in range(REPEATS):
        static, dynamic, scratch = kernel.build(_workload())
        best = np.array([kernel.soft(dynamic[9])], dtype=np.int64)
        kernel.seed(KERNEL_SEED)
        began = time.perf_counter()
        moves, _, _ = kernel.anneal(static, dynamic, scratch, kernel.SLOT, MOVES, TEMPERATURE, TEMPERATURE,
                                    dynamic[0].copy(), dynamic[1].copy(), best)
        rates.append(moves / (time.perf_counter() - began) / 1e6)
    return statistics.median(rates)


def speeds_agree(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(a, b)
