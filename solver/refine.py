"""Local search whose choice of neighbourhood is learned while it runs.

Simulated annealing over hard-feasible moves (move, swap, room change, Kempe chain and a
CP-SAT window re-optimisation). Which operator runs next is an adaptive operator selection
bandit: each operator's reward is the cost it removed per second of its own running time
(an exponential moving average), and the operators get time shares proportional to it,
with a floor so none starves. The temperature cools geometrically over the remaining
time and is reheated from the best timetable when the search stalls. A best of cost 0
ends the search at once: nothing can improve on it.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field

from solver.construct import feasible_state
from solver.evaluate import Cost, evaluate
from solver.neighbourhoods import OPERATORS, Accept, Operator
from solver.progress import SearchCallback, StopCheck, ignore_search, never_stop
from solver.state import SearchState
from solver.timetable import Timetable
from solver.window import reoptimize_window

BATCH_SECONDS = 0.01
REPORT_SECONDS = 0.1
REPORT_SHARE_INVERSE = 20  # reports take at most 1/20 of the time
T_START, T_END = 2.0, 0.15
HALF_LIFE = 3.0  # seconds
STALL_FRACTION = 0.15


@dataclass
class MoveStats:
    """Moves the search proposed (operator calls, including proposals an operator drops as
    infeasible before computing their cost change) and accepted (applied), in all and per
    operator, over `seconds` of search. A CP-SAT window solve is one proposal. Counted
    with plain integers in the batch loop, outside the moves themselves."""

    proposed: int = 0
    accepted: int = 0
    seconds: float = 0.0
    # operator name -> (proposed, accepted, seconds in its batches)
    by_operator: dict[str, tuple[int, int, float]] = field(default_factory=dict)

    def count(self, name: str, proposed: int, accepted: int, seconds: float) -> None:
        self.proposed += proposed
        self.accepted += accepted
        p, a, s = self.by_operator.get(name, (0, 0, 0.0))
        self.by_operator[name] = (p + proposed, a + accepted, s + seconds)

    @property
    def proposed_per_second(self) -> float:
        return self.proposed / self.seconds if self.seconds > 0 else 0.0

    @property
    def accepted_per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Refined:
    timetable: Timetable
    moves: MoveStats


class OperatorBandit:
    """Time shares over operators in proportion to their recent improvement per second."""

    def __init__(self, names: list[str], rng: random.Random, floor: float = 0.04, decay: float = 0.2) -> None:
        self.names, self.rng, self.floor, self.decay = names, rng, floor, decay
        self.rate = [1.0] * len(names)  # optimistic start: every operator gets tried
        self.seconds = [BATCH_SECONDS] * len(names)  # running mean of one batch's duration
        self.uses = [0] * len(names)

    def shares(self) -> list[float]:
        gains = [max(r, 0.0) for r in self.rate]
        total, n = sum(gains), len(gains)
        if total <= 0:
            return [1 / n] * n
        return [self.floor + (1 - n * self.floor) * g / total for g in gains]

    def choose(self) -> int:
        weights = [s / t for s, t in zip(self.shares(), self.seconds)]
        return self.rng.choices(range(len(weights)), weights)[0]

    def reward(self, i: int, improvement: float, seconds: float) -> None:
        seconds = max(seconds, 1e-6)
        self.uses[i] += 1
        # Estimates age with the search's own clock, so a rarely chosen operator is not
        # judged forever by the easy gains of the start.
        fade = 0.5 ** (seconds / HALF_LIFE)
        self.rate = [r * fade for r in self.rate]
        self.rate[i] += self.decay * (improvement / seconds - self.rate[i])
        self.seconds[i] += self.decay * (seconds - self.seconds[i])


class Annealer:
    """Geometric cooling from T_START to T_END over a cycle; a stall starts a new, cooler cycle."""

    def __init__(self, start: float, deadline: float, rng: random.Random) -> None:
        self.rng, self.deadline = rng, deadline
        self.t0, self.cycle_start, self.temperature = T_START, start, T_START
        self.stall = max(2.0, STALL_FRACTION * (deadline - start))

    def cool(self, now: float) -> None:
        span = max(self.deadline - self.cycle_start, 1e-6)
        frac = min((now - self.cycle_start) / span, 1.0)
        self.temperature = self.t0 * (T_END / self.t0) ** frac

    def reheat(self, now: float) -> None:
        self.t0 = max(self.temperature * 4, T_END * 2, self.t0 / 2)
        self.cycle_start = now

    def accept(self, d: int) -> bool:
        return d <= 0 or self.rng.random() < math.exp(-d / self.temperature)


class _Best:
    def __init__(self, state: SearchState) -> None:
        self.soft = state.soft
        self.period, self.room = list(state.period), list(state.room)
        self.when = time.monotonic()
        self.fresh = True

    def offer(self, state: SearchState, now: float) -> None:
        if state.soft < self.soft:
            self.soft, self.period, self.room = state.soft, list(state.period), list(state.room)
            self.when, self.fresh = now, True

    def timetable(self, state: SearchState) -> Timetable:
        return Timetable(state.instance, tuple(self.period), tuple(self.room))


def refine(
    timetable: Timetable,
    *,
    time_limit: float,
    seed: int,
    workers: int = 1,
    should_stop: StopCheck = never_stop,
    on_iteration: SearchCallback = ignore_search,
) -> Refined:
    """The best timetable found within `time_limit` seconds, never worse than `timetable`,
    and the moves its search proposed and accepted."""
    start = time.monotonic()
    deadline = start + time_limit
    rng = random.Random(seed)
    state = feasible_state(timetable, rng, deadline, should_stop)
    search = LocalSearch(state, rng, start, deadline, workers, should_stop, on_iteration)
    if state.hard == 0:
        search.run()
    found = search.best.timetable(state)
    return Refined(found if evaluate(found).key < evaluate(timetable).key else timetable, search.moves)


class LocalSearch:
    """Annealing over a feasible `SearchState`, operator choice by an `OperatorBandit`."""

    def __init__(
        self,
        state: SearchState,
        rng: random.Random,
        start: float,
        deadline: float,
        workers: int,
        should_stop: StopCheck,
        on_iteration: SearchCallback,
    ) -> None:
        self.state, self.rng, self.deadline, self.should_stop = state, rng, deadline, should_stop
        self.on_iteration, self.start = on_iteration, start
        self.best = _Best(state)
        self.annealer = Annealer(start, deadline, rng)
        self.ops: list[tuple[str, Operator]] = list(OPERATORS.items())
        self.ops.append(("window", self._window))
        self.bandit = OperatorBandit([name for name, _ in self.ops], rng)
        self.per_second = [1000.0] * len(self.ops)  # proposals per second, to size the batches
        self.workers, self.proposals, self.next_report = workers, 0, 0.0
        self.reported: Cost | None = None
        self.moves = MoveStats()

    def _window(self, state: SearchState, rng: random.Random, _accept: Accept) -> int | None:
        budget = min(1.0, self.deadline - time.monotonic())
        if budget < 0.2:
            return None
        return reoptimize_window(state, rng, time_limit=budget, workers=self.workers, should_stop=self.should_stop)

    def run(self) -> None:
        began = time.monotonic()
        while self.best.soft > 0 and not self.should_stop():
            now = time.monotonic()
            if now >= self.deadline:
                break
            self._batch(self.bandit.choose())
            now = time.monotonic()
            self.best.offer(self.state, now)
            self.annealer.cool(now)
            if now - self.best.when > self.annealer.stall and now - self.annealer.cycle_start > self.annealer.stall:
                self._reheat(now)
            self._report(now)
        self.moves.seconds += time.monotonic() - began
        self._report(float("inf"))

    def _batch(self, i: int) -> None:
        state, rng, op = self.state, self.rng, self.ops[i][1]
        accept, best = self.annealer.accept, self.best
        n = max(1, int(self.per_second[i] * BATCH_SECONDS))
        gained, accepted, t0 = 0, 0, time.monotonic()
        for k in range(n):
            d = op(state, rng, accept)
            if d is not None:
                accepted += 1
                if d < 0:
                    gained -= d
                    if state.soft < best.soft:
                        best.offer(state, t0)
                        if best.soft == 0:  # nothing can improve on it
                            n = k + 1
                            break
        seconds = time.monotonic() - t0
        self.proposals += n
        self.moves.count(self.ops[i][0], n, accepted, seconds)
        self.per_second[i] = n / max(seconds, 1e-6)
        # Reward: the downhill steps the operator found per second. (The net change of the
        # current cost favours the never-uphill CP-SAT window far too much under annealing;
        # new bests are too rare to learn from.)
        self.bandit.reward(i, gained, seconds)

    def _reheat(self, now: float) -> None:
        self.state.reassign([(l, p, r) for l, (p, r) in enumerate(zip(self.best.period, self.best.room))])
        self.annealer.reheat(now)
        self.best.when = now

    def _report(self, now: float) -> None:
        if now < self.next_report:
            return
        began = time.monotonic()
        elapsed = max(began - self.start, 1e-3)
        total = max(self.proposals, int(self.proposals * (self.deadline - self.start) / elapsed))
        best_tt = self.best.timetable(self.state) if self.best.fresh else None
        if best_tt is not None or self.reported is None:
            self.reported = evaluate(self.best.timetable(self.state))
        self.best.fresh = False
        self.on_iteration(min(self.proposals, total), total, self.reported, best_tt)
        # A report of a large timetable costs tens of milliseconds: space them so that
        # reporting never takes more than a small share of the search's time.
        spent = time.monotonic() - began
        self.next_report = began + max(REPORT_SECONDS, REPORT_SHARE_INVERSE * spent)
