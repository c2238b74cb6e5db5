"""A memetic genetic algorithm (DEAP) over hard-feasible timetables.

An individual is the flat list `periods + rooms`. Crossover copies a random set of
curricula's courses from the second parent into the first, lecture by lecture, wherever
that stays feasible (the rest keep the first parent's slots), so children need no repair.
Mutation is a few random feasible neighbourhood moves followed by a short descent with
the incremental evaluator, which also gives the fitness.
The hall of fame keeps the best timetable ever seen, and it goes into every generation.
"""

from __future__ import annotations

import random
import time

from deap import base, creator, tools

from solver.construct import feasible_state
from solver.evaluate import Cost, evaluate
from solver.neighbourhoods import OPERATORS, Operator
from solver.progress import SearchCallback, StopCheck, ignore_search, never_stop
from solver.state import SearchState
from solver.timetable import Timetable

POPULATION = 12
CHILDREN = 8
PERTURB_MOVES = 8
DESCENT_PROPOSALS = 1500
_DESCENT_OPS: tuple[Operator, ...] = tuple(OPERATORS[name] for name in ("move", "swap", "room", "course_rooms", "kempe"))

if not hasattr(creator, "TimetableFitness"):
    creator.create("TimetableFitness", base.Fitness, weights=(-1.0,))
    creator.create("TimetableGenome", list, fitness=creator.TimetableFitness)


def _genome(state: SearchState) -> list:
    ind = creator.TimetableGenome(state.period + state.room)
    ind.fitness.values = (state.soft,)
    return ind


def _state(template: SearchState, genome: list) -> SearchState:
    return SearchState(_timetable(template, genome))


def _perturb(state: SearchState, rng: random.Random, moves: int) -> None:
    """Random feasible moves, accepted whatever they cost (a kick away from the parent)."""
    for _ in range(moves * 20):
        if rng.choice(_DESCENT_OPS)(state, rng, lambda _d: True) is not None:
            moves -= 1
            if moves <= 0:
                return


def _descend(state: SearchState, rng: random.Random, proposals: int) -> None:
    for _ in range(proposals // 50):
        op = rng.choice(_DESCENT_OPS)
        for _ in range(50):
            op(state, rng, lambda d: d <= 0)


def _crossover(template: SearchState, first: list, second: list, rng: random.Random) -> SearchState:
    """The first parent, with the courses of some curricula moved to the second parent's slots."""
    child = _state(template, first)
    n = template.n_lectures
    curricula = template.instance.index.curriculum_courses
    picked = {c for q in rng.sample(range(len(curricula)), max(1, len(curricula) // 3)) for c in curricula[q]}
    for c in picked:
        for l in child.lectures_of[c]:
            p, r = second[l], second[n + l]
            if child.can_move(l, p, r):
                child.move(l, p, r)
    return child


def evolve(
    timetable: Timetable,
    *,
    time_limit: float,
    seed: int,
    should_stop: StopCheck = never_stop,
    on_generation: SearchCallback = ignore_search,
) -> Timetable:
    """The best timetable the GA finds within `time_limit` seconds; never worse than `timetable`."""
    start = time.monotonic()
    deadline = start + time_limit
    rng = random.Random(seed)
    base_state = feasible_state(timetable, rng, deadline, should_stop)
    if base_state.hard:
        return timetable  # nothing feasible to evolve from; the later stages repair
    hof = tools.HallOfFame(1)
    population = _seed_population(base_state, rng, deadline, should_stop)
    hof.update(population)
    generation, total = 0, 1
    on_generation(0, total, _cost(base_state, hof[0]), None)
    # A best of cost 0 (the population is hard-feasible) cannot improve: stop there.
    while hof[0].fitness.values[0] > 0 and time.monotonic() < deadline and not should_stop():
        before = hof[0].fitness.values[0]
        population = _next_generation(base_state, population, hof, rng, deadline, should_stop)
        generation += 1
        per_generation = (time.monotonic() - start) / generation
        total = max(generation, generation + int((deadline - time.monotonic()) / per_generation))
        improved = hof[0].fitness.values[0] < before
        best_tt = _timetable(base_state, hof[0]) if improved else None
        on_generation(generation, total, _cost(base_state, hof[0]), best_tt)
    found = _timetable(base_state, hof[0])
    return found if evaluate(found).key < evaluate(timetable).key else timetable


def _seed_population(
    base_state: SearchState, rng: random.Random, deadline: float, should_stop: StopCheck
) -> list:
    population = [_genome(base_state)]
    while len(population) < POPULATION and time.monotonic() < deadline and not should_stop():
        state = _state(base_state, population[0])
        _perturb(state, rng, PERTURB_MOVES * 4)
        _descend(state, rng, DESCENT_PROPOSALS)
        population.append(_genome(state))
    return population


def _next_generation(
    base_state: SearchState, population: list, hof: tools.HallOfFame, rng: random.Random, deadline: float,
    should_stop: StopCheck,
) -> list:
    children = []
    for _ in range(CHILDREN):
        if time.monotonic() >= deadline or should_stop():
            break
        first, second = tools.selTournament(population, 2, tournsize=3)
        child = _crossover(base_state, first, second, rng)
        _perturb(child, rng, PERTURB_MOVES)
        _descend(child, rng, DESCENT_PROPOSALS)
        children.append(_genome(child))
    hof.update(children)
    survivors = tools.selBest(population + children, POPULATION - 1)
    elite = creator.TimetableGenome(hof[0])
    elite.fitness.values = hof[0].fitness.values
    return [elite] + survivors


def _timetable(template: SearchState, genome: list) -> Timetable:
    n = template.n_lectures
    return Timetable(template.instance, tuple(genome[:n]), tuple(genome[n:]))


def _cost(template: SearchState, genome: list) -> Cost:
    return evaluate(_timetable(template, genome))
