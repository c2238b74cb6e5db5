"""A memetic genetic algorithm (DEAP) that recombines several good, different timetables.

It is the refinement's probe, done by a population: the founders are short, hot annealing
runs of the compiled kernel from the input, as hot as its cost calls for, with different
seeds (different good timetables, where the refinement alone would run one probing cycle).
A child is its first parent with the courses of some curricula moved to the second parent's
slots, lecture by lecture, wherever that stays feasible (so no repair is needed): of the
curricula the second parent serves at a lower cost, at most a third. A short, cool annealing
run settles the seams. A child whose cost equals a member's is dropped, which keeps the
population diverse; the hall of fame keeps the best timetable ever seen, and it goes into
every generation. Once STALL_CHILDREN children in a row have not improved on it, the GA ends
and hands its time on to the refinement. With several workers, as many founders or children
anneal at once, in threads.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from deap import base, creator, tools

from solver.construct import feasible_state
from solver.evaluate import Cost, curriculum_costs, evaluate
from solver.progress import SearchCallback, StopCheck, ignore_search, never_stop
from solver.refine import LocalSearch, Schedule
from solver.state import SearchState
from solver.timetable import Timetable

POPULATION = 4
# Seconds of annealing per founder and per child, as shares of the GA's time.
FOUNDER_SHARE = 0.15
CHILD_SHARE = 0.03
# Children in a row that do not improve the best, after which the GA's time serves better
# in the refinement: more than the population, so every member has had its chances to mate.
STALL_CHILDREN = 2 * POPULATION
# Founders cool from the refinement's own heat, scaled by the input's cost: a probe each.
# Children settle at a fixed, cool heat that keeps most of what recombination brought (one
# scaled by the cost gave comp05 348 and 368 at 120 s, seeds 0-1, against 320 and 321).
FOUNDING = Schedule(probes=False)
SETTLING = Schedule(start=0.6, end=0.1, follows_cost=False, probes=False)

if not hasattr(creator, "TimetableFitness"):
    creator.create("TimetableFitness", base.Fitness, weights=(-1.0,))
    creator.create("TimetableGenome", list, fitness=creator.TimetableFitness)


def _genome(timetable: Timetable, soft: int) -> list:
    ind = creator.TimetableGenome(timetable.period + timetable.room)
    ind.fitness.values = (soft,)
    return ind


def _timetable(template: Timetable, genome: list) -> Timetable:
    n = len(template.period)
    return Timetable(template.instance, tuple(genome[:n]), tuple(genome[n:]))


def _anneal(
    timetable: Timetable, seconds: float, deadline: float, schedule: Schedule, rng: random.Random, should_stop: StopCheck
) -> list:
    now = time.monotonic()
    search = LocalSearch(timetable, rng, now, min(now + seconds, deadline), should_stop, ignore_search, schedule, window=False)
    search.run()
    return _genome(search.best.timetable(timetable), search.best.soft)


def _crossover(template: Timetable, first: list, second: list, rng: random.Random) -> Timetable:
    """The first parent, with the courses of some curricula moved to the second parent's slots:
    of those the second parent serves at a lower cost, at most a third (at random if none)."""
    child = SearchState(_timetable(template, first))
    n = len(template.period)
    curricula = template.instance.index.curriculum_courses
    third = max(1, len(curricula) // 3)
    cheaper = np.flatnonzero(curriculum_costs(_timetable(template, second)) < curriculum_costs(child.to_timetable()))
    chosen = rng.sample(cheaper.tolist(), min(third, len(cheaper))) if len(cheaper) else rng.sample(range(len(curricula)), third)
    for c in {c for q in chosen for c in curricula[q]}:
        for l in child.lectures_of[c]:
            p, r = second[l], second[n + l]
            if child.can_move(l, p, r):
                child.move(l, p, r)
    return child.to_timetable()


def evolve(
    timetable: Timetable,
    *,
    time_limit: float,
    seed: int,
    workers: int = 1,
    should_stop: StopCheck = never_stop,
    on_generation: SearchCallback = ignore_search,
) -> Timetable:
    """The best timetable the GA finds within `time_limit` seconds; never worse than `timetable`.
    With several workers, that many founders or children anneal at once."""
    start = time.monotonic()
    deadline = start + time_limit
    rng = random.Random(seed)
    state = feasible_state(timetable, rng, deadline, should_stop)
    if state.hard or not timetable.period:
        return timetable  # nothing feasible to evolve from; the later stages repair
    base_tt = state.to_timetable()
    population = [_genome(base_tt, state.soft)]
    hof = tools.HallOfFame(1)
    hof.update(population)
    on_generation(0, 1, evaluate(base_tt), None)
    generation, total = 0, 1

    stalled = 0  # children since the best last improved

    def running() -> bool:
        # A best of cost 0 cannot improve: stop there.
        return (hof[0].fitness.values[0] > 0 and stalled < STALL_CHILDREN and time.monotonic() < deadline
                and not should_stop())

    optimal = threading.Event()  # one member of cost 0 ends the others' annealing too

    def anneal_one(start_tt: Timetable, share: float, schedule: Schedule, seed: int) -> list:
        genome = _anneal(start_tt, share * time_limit, deadline, schedule, random.Random(seed),
                         lambda: should_stop() or optimal.is_set())
        if genome.fitness.values[0] == 0:
            optimal.set()
        return genome

    def anneal_all(starts: list[Timetable], share: float, schedule: Schedule) -> list[list]:
        """Anneals each start, `workers` at once (the kernel runs without the GIL)."""
        seeds = [rng.randrange(2**31) for _ in starts]
        return list(pool.map(lambda tt, s: anneal_one(tt, share, schedule, s), starts, seeds))

    with ThreadPoolExecutor(max(1, workers)) as pool:
        while running():
            before = hof[0].fitness.values[0]
            if len(population) < POPULATION:
                population += anneal_all([base_tt] * min(workers, POPULATION - len(population)), FOUNDER_SHARE, FOUNDING)
            else:
                stalled += workers
                parents = [tools.selTournament(population, 2, tournsize=2) for _ in range(workers)]
                mixed = [_crossover(base_tt, first, second, rng) for first, second in parents]
                for child in anneal_all(mixed, CHILD_SHARE, SETTLING):
                    if all(child.fitness.values != ind.fitness.values for ind in population):
                        population = tools.selBest(population + [child], POPULATION)
            hof.update(population)
            generation += 1
            per_generation = (time.monotonic() - start) / generation
            total = max(generation, generation + int((deadline - time.monotonic()) / per_generation))
            improved = hof[0].fitness.values[0] < before
            stalled = 0 if improved else stalled
            on_generation(generation, total, _cost(base_tt, hof[0]), _timetable(base_tt, hof[0]) if improved else None)
    found = _timetable(base_tt, hof[0])
    return found if evaluate(found).key < evaluate(timetable).key else timetable


def _cost(template: Timetable, genome: list) -> Cost:
    return evaluate(_timetable(template, genome))
