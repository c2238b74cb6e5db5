"""Local search whose choice of neighbourhood is learned while it runs.

Simulated annealing over hard-feasible moves, run by the compiled kernel
(`solver.kernel`): a lecture to another period and room (swapping with the lecture there),
a room change, all lectures of a course into one room, and a Kempe-chain exchange of two
periods; between kernel batches, a CP-SAT re-optimisation of a window of the timetable.
Which neighbourhood runs next is an adaptive operator selection bandit: each one's
reward is the cost it removed per second of its own running time (an exponential moving
average), and the neighbourhoods get time shares proportional to it, with a floor so none
starves. The temperature cools geometrically: first over a short probing cycle, which finds
an easy instance's optimum within seconds (left out when the GA's founders probed already),
then once more over all the time left (one anneal, as slow as the budget allows); once
cold, a search that stalls starts a new, cooler cycle over the time left, from the best
timetable. A best of cost 0 ends the search at once:
nothing can improve on it. With several workers, as many chains anneal at once in threads
(the kernel releases the GIL) and meet at every reheat, where each starts again from the
best of all.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from solver import kernel
from solver.construct import feasible_state
from solver.evaluate import Cost, evaluate
from solver.progress import SearchCallback, StopCheck, ignore_search, never_stop
from solver.state import SearchState
from solver.timetable import Timetable
from solver.window import reoptimize_window

BATCH_SECONDS = 0.01
REPORT_SECONDS = 0.1
REPORT_SHARE_INVERSE = 20  # reports take at most 1/20 of the time
T_START, T_END = 1.5, 0.15
HALF_LIFE = 3.0  # seconds
STALL_FRACTION = 0.15
# The probing cycle lasts this long per lecture (at least MIN_CYCLE), and at most PROBE_SHARE
# of the time: enough to settle an easy instance at its optimum (a 31-lecture one with
# optimum 0 reaches it in 0.5-1.5 s), little enough that a hard one keeps most of its time
# for the long anneal.
CYCLE_PER_LECTURE = 0.15
MIN_CYCLE = 1.0
PROBE_SHARE = 0.1
# The heat follows the cost: a timetable with many penalty points per lecture lies in a
# rugged landscape that takes heat to cross, one near its optimum needs little (the same
# idea as a great deluge whose bound is relative to the best). The schedule is scaled by
# sqrt(cost per lecture / HEAT_REFERENCE), bounded, set from the best at every reheat.
HEAT_REFERENCE = 0.25
HEAT_BOUNDS = (0.4, 4.0)
# The long anneal is as hot as its cost calls for once it has this many seconds per lecture
# to cool in, and proportionally cooler with less: a hot start without the time to settle
# is wasted (comp02 and comp03 from CP-SAT's cost at 120 s on one core, heat 4.0-4.9:
# 43.8 and 81.8 over 5 seeds, against 42.4 and 74.8 from the GA's cost).
HOT_SECONDS_PER_LECTURE = 1.0


def heat_scale(soft: int, lectures: int) -> float:
    """How much hotter than the schedule's own temperatures a search at cost `soft` runs."""
    low, high = HEAT_BOUNDS
    return min(high, max(low, math.sqrt(soft / max(lectures, 1) / HEAT_REFERENCE)))


def long_anneal_heat(soft: int, lectures: int, seconds: float) -> float:
    """The heat scale of the long anneal, at cost `soft` with `seconds` to cool in."""
    low, _ = HEAT_BOUNDS
    return max(low, heat_scale(soft, lectures) * min(1.0, seconds / max(lectures, 1) / HOT_SECONDS_PER_LECTURE))


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


@dataclass(frozen=True)
class Schedule:
    """Temperatures of the annealing: from `start` to `end`, geometrically, over the time given;
    scaled by the cost (`heat_scale`) when `follows_cost`."""

    start: float = T_START
    end: float = T_END
    follows_cost: bool = True
    # A short probing cycle before the long anneal; without it, one cycle over all the time
    # (the GA's runs, too short to need one).
    probes: bool = True


class Annealer:
    """Geometric cooling, times `scale`. The first cycle (the probe) lasts `first_cycle` seconds,
    or until the best stalls; every cycle after it runs to the deadline, and a stall ends it
    only once cold.

    After the probe, cycles as long as the budget: a series of short ones did its work in the
    first, hot one, and the cooler ones after it hardly moved the best (comp02, 300 s on two
    cores: 47 from 90 s to the end; without the GA, 43 at 60 s and 40 at the end)."""

    def __init__(self, start: float, deadline: float, schedule: Schedule, first_cycle: float, scale: float = 1.0) -> None:
        self.deadline, self.end, self.scale = deadline, schedule.end, scale
        self.first_t0 = self.t0 = schedule.start
        self.cycle_start, self.cycle_end = start, min(start + first_cycle, deadline)
        self.probing = self.cycle_end < deadline
        self.stall = max(2.0, STALL_FRACTION * (deadline - start))

    @property
    def span(self) -> float:
        return max(self.cycle_end - self.cycle_start, 1e-6)

    def at(self, now: float) -> float:
        return self.scale * self._unscaled(now)

    def _unscaled(self, now: float) -> float:
        frac = min((now - self.cycle_start) / self.span, 1.0)
        return self.t0 * (self.end / self.t0) ** frac

    def over(self, now: float, best_since: float) -> bool:
        """The cycle is over, or the best has not moved for a stall's time and the cycle is the
        probe or cold (a hot search drifts above its best, as it should: no stall there)."""
        in_cycle = now - self.cycle_start
        stalled = now - best_since > self.stall and in_cycle > self.stall
        cold = self._unscaled(now) <= 2 * self.end
        return now >= self.cycle_end or (stalled and (self.probing or cold))

    def reheat(self, now: float, scale: float = 1.0) -> None:
        """A new cycle over the time left: after the probe, as hot as the schedule starts."""
        # Four times the present heat, but never above the last start: a cycle cut short by a
        # stall while still hot must not climb from start to start, away from a good input.
        self.t0 = self.first_t0 if self.probing else max(self.end * 2, min(self._unscaled(now) * 4, self.t0 / 2))
        self.cycle_start, self.cycle_end, self.scale, self.probing = now, self.deadline, scale, False


class _Best:
    """The best timetable of the search, as arrays the kernel keeps up to date."""

    def __init__(self, period: np.ndarray, room: np.ndarray, soft: int) -> None:
        self.period, self.room = period.copy(), room.copy()
        self.cost = np.array([soft], dtype=np.int64)
        self.seen, self.when, self.fresh = soft, time.monotonic(), True

    @property
    def soft(self) -> int:
        return int(self.cost[0])

    def offer(self, period: np.ndarray, room: np.ndarray, soft: int) -> None:
        if soft < self.soft:
            self.period[:], self.room[:], self.cost[0] = period, room, soft

    def note(self, now: float) -> None:
        """Dates the improvements made to the arrays since the last call (the kernel's)."""
        if self.soft < self.seen:
            self.seen, self.when, self.fresh = self.soft, now, True

    def timetable(self, timetable: Timetable) -> Timetable:
        return kernel.timetable_of(timetable.instance, self.period, self.room)


class SharedBest:
    """The best of several chains running at once: each one, when it reheats, hands in its
    best and starts again from the best of all."""

    def __init__(self, best: _Best) -> None:
        self._lock = threading.Lock()
        self._best = _Best(best.period, best.room, best.soft)

    def exchange(self, best: _Best) -> None:
        with self._lock:
            self._best.offer(best.period, best.room, best.soft)
            best.offer(self._best.period, self._best.room, self._best.soft)


def refine(
    timetable: Timetable,
    *,
    time_limit: float,
    seed: int,
    workers: int = 1,
    should_stop: StopCheck = never_stop,
    on_iteration: SearchCallback = ignore_search,
    heat_from: int | None = None,
    probe: bool = True,
) -> Refined:
    """The best timetable found within `time_limit` seconds, never worse than `timetable`,
    and the moves its search proposed and accepted. The long anneal's heat follows the soft
    cost `heat_from` (by default the input's) and the time there is (see `long_anneal_heat`).
    Without `probe`, the long anneal begins at once (the input comes from a search that probed)."""
    start = time.monotonic()
    deadline = start + time_limit
    rng = random.Random(seed)
    state = feasible_state(timetable, rng, deadline, should_stop)
    if state.hard:  # the annealing needs a complete, clash-free start: hand on the closest one
        found, moves = state.to_timetable(), MoveStats()
    else:
        found, moves = _run_chains(state.to_timetable(), rng, start, deadline, workers, should_stop, on_iteration,
                                   heat_from, probe)
    return Refined(found if evaluate(found).key < evaluate(timetable).key else timetable, moves)


def _run_chains(
    timetable: Timetable, rng: random.Random, start: float, deadline: float, workers: int,
    should_stop: StopCheck, on_iteration: SearchCallback, heat_from: int | None, probe: bool,
) -> tuple[Timetable, MoveStats]:
    """One annealing chain per worker, at once (the kernel runs without the GIL), meeting
    at each reheat; the first one reports. The best of all, and the moves of all."""
    chains: list[LocalSearch] = []

    def stop() -> bool:
        # A chain's best of cost 0 cannot improve: every chain ends with it.
        return should_stop() or any(chain.best.soft == 0 for chain in chains)

    chains += [
        LocalSearch(timetable, random.Random(rng.randrange(2**31)), start, deadline, stop,
                    on_iteration if k == 0 else ignore_search, heat_from=heat_from, probe=probe)
        for k in range(max(1, workers))
    ]
    if len(chains) > 1:
        shared = SharedBest(chains[0].best)
        for chain in chains:
            chain.shared = shared
    helpers = [threading.Thread(target=chain.run, daemon=True) for chain in chains[1:]]
    for helper in helpers:
        helper.start()
    chains[0].run()
    for helper in helpers:
        helper.join()
    best = min(chains, key=lambda chain: chain.best.soft)
    moves = MoveStats()
    for chain in chains:
        for name, (proposed, accepted, seconds) in chain.moves.by_operator.items():
            moves.count(name, proposed, accepted, seconds)
        moves.seconds = max(moves.seconds, chain.moves.seconds)
    return best.best.timetable(timetable), moves


# The kernel's neighbourhoods as the bandit's arms; "window" is CP-SAT, run here in Python.
# Room moves only descend: their uphill steps, undone a moment later, would look like
# progress to the bandit and buy little diversity.
NEIGHBOURHOODS: tuple[tuple[str, int, bool], ...] = (  # name, kernel op, anneals
    ("slot", kernel.SLOT, True),
    ("room", kernel.ROOM, False),
    ("course_rooms", kernel.COURSE_ROOMS, False),
    ("kempe", kernel.KEMPE, True),
)
WINDOW = "window"
COLD = 1e-9  # a temperature at which no uphill step passes


class LocalSearch:
    """Annealing over a complete, hard-feasible timetable, neighbourhood by an `OperatorBandit`."""

    def __init__(
        self,
        start_timetable: Timetable,
        rng: random.Random,
        start: float,
        deadline: float,
        should_stop: StopCheck,
        on_iteration: SearchCallback,
        schedule: Schedule = Schedule(),
        window: bool = True,
        heat_from: int | None = None,
        probe: bool = True,
    ) -> None:
        self.probe = probe
        self.timetable, self.rng, self.deadline, self.should_stop = start_timetable, rng, deadline, should_stop
        self.on_iteration, self.start = on_iteration, start
        self.static, self.dynamic, self.scratch = kernel.build(start_timetable)
        self.kernel_seed = rng.randrange(2**31)
        self.best = _Best(self.dynamic[0], self.dynamic[1], self.soft)
        self.follows_cost = schedule.follows_cost
        self.heat_from = self.best.soft if heat_from is None else heat_from
        self.annealer = Annealer(start, deadline, schedule, self._probe(schedule, deadline - start), self._heat())
        self.bandit = OperatorBandit([name for name, _, _ in NEIGHBOURHOODS] + ([WINDOW] if window else []), rng)
        self.per_second = [100_000.0] * len(NEIGHBOURHOODS)  # proposals per second, to size the batches
        self.proposals, self.next_report = 0, 0.0
        self.reported: Cost | None = None
        self.moves = MoveStats()
        self.shared: SharedBest | None = None  # the other chains', when several run at once

    @property
    def soft(self) -> int:
        return int(kernel.soft(self.dynamic[9]))

    def _heat(self) -> float:
        return heat_scale(self.best.soft, len(self.timetable.period)) if self.follows_cost else 1.0

    def _probe(self, schedule: Schedule, seconds: float) -> float:
        """The first cycle's length: the probe's, none (the long anneal begins at once), or all the
        time there is (a schedule without a probe: one cycle)."""
        if not schedule.probes:
            return seconds
        if not self.probe:
            return 0.0
        return min(max(MIN_CYCLE, CYCLE_PER_LECTURE * len(self.timetable.period)), PROBE_SHARE * seconds)

    def run(self) -> None:
        kernel.seed(self.kernel_seed)  # the kernel's random state is the running thread's own
        began = time.monotonic()
        while self.best.soft > 0 and not self.should_stop():
            now = time.monotonic()
            if now >= self.deadline:
                break
            i = self.bandit.choose()
            if i < len(NEIGHBOURHOODS):
                self._batch(i, now)
            else:
                self._window(i)
            now = time.monotonic()
            self.best.note(now)
            if self.annealer.over(now, self.best.when):
                self._reheat(now)
            self._report(now)
        self.moves.seconds += time.monotonic() - began
        self._report(float("inf"))

    def _batch(self, i: int, now: float) -> None:
        name, op, anneals = NEIGHBOURHOODS[i]
        n = max(1, int(self.per_second[i] * BATCH_SECONDS))
        t_from = self.annealer.at(now) if anneals else COLD
        t_to = self.annealer.at(now + BATCH_SECONDS) if anneals else COLD
        best = self.best
        t0 = time.monotonic()
        n, accepted, gained = kernel.anneal(self.static, self.dynamic, self.scratch, op, n, t_from, t_to,
                                            best.period, best.room, best.cost)
        seconds = time.monotonic() - t0
        self.proposals += n
        self.moves.count(name, n, accepted, seconds)
        self.per_second[i] = n / max(seconds, 1e-6)
        # Reward: the downhill steps the neighbourhood found per second. (The net change of
        # the current cost favours the never-uphill ones far too much under annealing; new
        # bests are too rare to learn from.)
        self.bandit.reward(i, gained, seconds)

    def _window(self, i: int) -> None:
        """CP-SAT re-optimises a window of the current timetable (between kernel batches)."""
        t0 = time.monotonic()
        budget = min(1.0, self.deadline - t0)
        gained = 0
        if budget >= 0.2:
            state = SearchState(kernel.timetable_of(self.timetable.instance, self.dynamic[0], self.dynamic[1]))
            d = reoptimize_window(state, self.rng, time_limit=budget, workers=1,  # a core per chain
                                  should_stop=self.should_stop)
            if d is not None:
                gained = -d
                self._load(state.to_timetable())
        seconds = time.monotonic() - t0
        self.proposals += 1
        self.moves.count(WINDOW, 1, 1 if gained else 0, seconds)
        self.bandit.reward(i, gained, seconds)

    def _load(self, timetable: Timetable) -> None:
        """The kernel's current timetable becomes `timetable` (its best is kept)."""
        self.static, self.dynamic, self.scratch = kernel.build(timetable)
        self.best.offer(self.dynamic[0], self.dynamic[1], self.soft)

    def _reheat(self, now: float) -> None:
        if self.shared is not None:
            self.shared.exchange(self.best)
        self._load(self.best.timetable(self.timetable))
        if self.annealer.probing and self.follows_cost:
            # The long anneal: as hot as `heat_from` calls for and the time left allows.
            scale = long_anneal_heat(self.heat_from, len(self.timetable.period), self.deadline - now)
        else:
            scale = self._heat()
        self.annealer.reheat(now, scale)
        self.best.when = now

    def _report(self, now: float) -> None:
        if now < self.next_report:
            return
        began = time.monotonic()
        elapsed = max(began - self.start, 1e-3)
        total = max(self.proposals, int(self.proposals * (self.deadline - self.start) / elapsed))
        best_tt = self.best.timetable(self.timetable) if self.best.fresh else None
        if best_tt is not None or self.reported is None:
            self.reported = evaluate(self.best.timetable(self.timetable))
        self.best.fresh = False
        self.on_iteration(min(self.proposals, total), total, self.reported, best_tt)
        # A report of a large timetable costs tens of milliseconds: space them so that
        # reporting never takes more than a small share of the search's time.
        spent = time.monotonic() - began
        self.next_report = began + max(REPORT_SECONDS, REPORT_SHARE_INVERSE * spent)
