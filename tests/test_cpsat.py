"""The CP-SAT placement model, one constraint at a time, and the cluster stage."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from ortools.sat.python import cp_model

from solver.cluster import cluster_courses
from solver.construct import feasible_state
from solver.cpsat import Solved, improve_clusters, reoptimize
from solver.cpsat_model import build_placement
from solver.ctt import parse_ctt
from solver.evaluate import evaluate
from solver.model import Course, Curriculum, Instance, Room, Unavailability
from solver.progress import never_stop
from solver.timetable import Timetable

CTT = Path(__file__).resolve().parents[1].parent / "shared" / "ctt"


def tiny(
    courses: list[tuple[str, str, int, int, int]],
    rooms: list[tuple[str, int]],
    *,
    curricula: dict[str, list[str]] | None = None,
    unavailable: list[tuple[str, int, int]] = (),
    days: int = 1,
    periods_per_day: int = 4,
) -> Instance:
    """courses: (id, teacher, lectures, min_working_days, students)."""
    return Instance(
        name="tiny",
        days=days,
        periods_per_day=periods_per_day,
        courses=tuple(Course(*c) for c in courses),
        rooms=tuple(Room(*r) for r in rooms),
        curricula=tuple(Curriculum(q, tuple(cs)) for q, cs in (curricula or {}).items()),
        unavailability=tuple(Unavailability(*u) for u in unavailable),
    )


def load(name: str) -> Instance:
    return parse_ctt((CTT / "instances" / f"{name}.ctt").read_text(), name)


def solve_free(base: Timetable, free: list[int] | None = None, seconds: float = 5.0) -> Solved | None:
    """Place `free` lectures (default: all) around the rest of `base` with a plain solver,
    checking that the model's objective is the evaluator's soft cost of what it returns."""
    free = list(range(base.instance.index.n_lectures)) if free is None else free
    placement = build_placement(base, free)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = 1
    solver.parameters.linearization_level = 2
    if solver.solve(placement.model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    solved = Solved(placement.timetable(solver), evaluate(placement.timetable(solver)))
    assert solved.soft == placement.soft(solver)
    return solved


def place(instance: Instance, fixed: dict[int, tuple[int, int]]) -> Timetable:
    """A timetable holding only the given lectures: lecture -> (period, room)."""
    n = instance.index.n_lectures
    period, room = [-1] * n, [-1] * n
    for l, (p, r) in fixed.items():
        period[l], room[l] = p, r
    return Timetable.from_arrays(instance, period, room)


def stop_later(seconds: float) -> tuple[threading.Event, list[float], threading.Timer]:
    """An event set after `seconds` by a timer (started), and the moment it was set."""
    stop = threading.Event()
    asked: list[float] = []

    def request() -> None:
        asked.append(time.monotonic())
        stop.set()

    timer = threading.Timer(seconds, request)
    timer.start()
    return stop, asked, timer


def periods_of(tt: Timetable, course: int) -> list[int]:
    fl = tt.instance.index.first_lecture
    return [tt.period[l] for l in range(fl[course], fl[course + 1])]


def test_each_course_gets_exactly_its_lectures_in_distinct_periods() -> None:
    inst = tiny([("a", "t1", 3, 1, 10), ("b", "t2", 2, 1, 10)], [("r", 20), ("s", 20)])
    solved = solve_free(Timetable.empty(inst))
    assert solved is not None
    assert evaluate(solved.timetable).hard == 0
    assert len(set(periods_of(solved.timetable, 0))) == 3 and -1 not in solved.timetable.period
    too_many = tiny([("a", "t1", 5, 1, 10)], [("r", 20)])
    assert solve_free(Timetable.empty(too_many)) is None


@pytest.mark.parametrize("shared", ["teacher", "curriculum"])
def test_conflicting_courses_never_share_a_period(shared: str) -> None:
    def make(lectures: int) -> Instance:
        teacher_b = "t1" if shared == "teacher" else "t2"
        curricula = {"q": ["a", "b"]} if shared == "curriculum" else None
        return tiny([("a", "t1", 2, 1, 10), ("b", teacher_b, lectures, 1, 10)], [("r", 20), ("s", 20)], curricula=curricula)

    solved = solve_free(Timetable.empty(make(2)))
    assert solved is not None
    assert not set(periods_of(solved.timetable, 0)) & set(periods_of(solved.timetable, 1))
    assert solve_free(Timetable.empty(make(3))) is None  # 5 lectures, 4 periods
    unrelated = tiny([("a", "t1", 2, 1, 10), ("b", "t2", 3, 1, 10)], [("r", 20), ("s", 20)])
    assert solve_free(Timetable.empty(unrelated)) is not None


def test_free_course_avoids_periods_of_conflicting_fixed_lectures() -> None:
    inst = tiny([("a", "t1", 2, 1, 10), ("b", "t1", 2, 1, 10)], [("r", 20), ("s", 20)])
    base = place(inst, {0: (0, 0), 1: (3, 0)})  # course a fixed in periods 0 and 3
    solved = solve_free(base, [2, 3])
    assert solved is not None and sorted(periods_of(solved.timetable, 1)) == [1, 2]
    assert evaluate(solved.timetable).hard == 0


def test_unavailable_periods_are_never_used() -> None:
    inst = tiny([("a", "t1", 2, 1, 10)], [("r", 20)], unavailable=[("a", 0, 0), ("a", 0, 2)])
    solved = solve_free(Timetable.empty(inst))
    assert solved is not None and sorted(periods_of(solved.timetable, 0)) == [1, 3]
    blocked = tiny([("a", "t1", 2, 1, 10)], [("r", 20)], unavailable=[("a", 0, p) for p in range(3)])
    assert solve_free(Timetable.empty(blocked)) is None


def test_rooms_hold_one_lecture_and_fixed_lectures_keep_theirs() -> None:
    inst = tiny([("a", "t1", 2, 1, 10), ("b", "t2", 2, 1, 10)], [("r", 20)], periods_per_day=4)
    solved = solve_free(Timetable.empty(inst))
    assert solved is not None and evaluate(solved.timetable).room_occupation == 0
    assert len(set(solved.timetable.period)) == 4
    fixed = place(inst, {0: (0, 0), 1: (1, 0)})  # course a holds the room in periods 0, 1
    solved = solve_free(fixed, [2, 3])
    assert solved is not None and sorted(periods_of(solved.timetable, 1)) == [2, 3]
    full = tiny([("a", "t1", 3, 1, 10), ("b", "t2", 2, 1, 10)], [("r", 20)])
    assert solve_free(place(full, {0: (0, 0), 1: (1, 0), 2: (2, 0)}), [3, 4]) is None


def test_room_capacity_cost_is_the_missing_seats_of_the_best_room() -> None:
    inst = tiny([("a", "t1", 1, 1, 50)], [("small", 30), ("mid", 40)])
    solved = solve_free(Timetable.empty(inst))
    assert solved is not None and solved.soft == 10 and solved.timetable.room == (1,)


def test_min_working_days_costs_five_per_missing_day() -> None:
    two_days = tiny([("a", "t1", 3, 3, 10)], [("r", 20)], days=2, periods_per_day=3)
    solved = solve_free(Timetable.empty(two_days))
    assert solved is not None and evaluate(solved.timetable).min_working_days == 5 and solved.soft == 5
    three_days = tiny([("a", "t1", 3, 3, 10)], [("r", 20)], days=3, periods_per_day=3)
    solved = solve_free(Timetable.empty(three_days))
    assert solved is not None and solved.soft == 0
    # A fixed lecture's day counts: with a fixed on day 0, the free two go to days 1 and 2.
    solved = solve_free(place(three_days, {0: (1, 0)}), [1, 2])
    assert solved is not None and solved.soft == 0
    assert sorted(p // 3 for p in periods_of(solved.timetable, 0)) == [0, 1, 2]


def test_compactness_counts_neighbours_among_fixed_lectures() -> None:
    def make(unavailable: list[tuple[str, int, int]]) -> Instance:
        courses = [("a", "t1", 1, 1, 10), ("b", "t2", 1, 1, 10)]
        return tiny(courses, [("r", 20)], curricula={"q": ["a", "b"]}, unavailable=unavailable, periods_per_day=3)

    # a is fixed in period 0; the free b next to it makes both non-isolated.
    solved = solve_free(place(make([]), {0: (0, 0)}), [1])
    assert solved is not None and solved.soft == 0 and periods_of(solved.timetable, 1) == [1]
    # b cannot sit next to a: both lectures are isolated, 2 × 2.
    solved = solve_free(place(make([("b", 0, 1)]), {0: (0, 0)}), [1])
    assert solved is not None and solved.soft == 4
    assert evaluate(solved.timetable).curriculum_compactness == 4


def test_room_stability_counts_rooms_beyond_the_first() -> None:
    courses = [("a", "t1", 2, 1, 10), ("b", "t2", 1, 1, 10), ("c", "t3", 1, 1, 10)]
    inst = tiny(courses, [("r", 20), ("s", 20)], periods_per_day=2)
    # b holds r in period 0 and c holds s in period 1, so a must change rooms.
    solved = solve_free(place(inst, {2: (0, 0), 3: (1, 1)}), [0, 1])
    assert solved is not None and solved.soft == 1 and evaluate(solved.timetable).room_stability == 1
    solved = solve_free(place(inst, {2: (0, 0)}), [0, 1, 3])
    assert solved is not None and solved.soft == 0


def test_objective_is_the_evaluator_cost_around_a_fixed_half_of_comp01() -> None:
    inst = load("comp01")
    full = solve_free(Timetable.empty(inst), seconds=5.0)
    assert full is not None
    solved = solve_free(full.timetable, list(range(0, inst.index.n_lectures, 2)), seconds=3.0)
    assert solved is not None and evaluate(solved.timetable).hard == 0


def test_reoptimize_returns_only_strict_improvements() -> None:
    inst = tiny([("a", "t1", 1, 1, 50)], [("small", 30), ("big", 60)])
    bad = place(inst, {0: (0, 0)})
    better = reoptimize(bad, [0], time_limit=2.0)
    assert better is not None and better.cost == evaluate(better.timetable) and better.soft == 0
    assert evaluate(bad).soft == 20 and reoptimize(better.timetable, [0], time_limit=2.0) is None


def test_reoptimize_places_what_is_still_unplaced() -> None:
    inst = tiny([("a", "t1", 2, 1, 10), ("b", "t1", 2, 1, 10)], [("r", 20)])
    base = place(inst, {0: (1, 0), 1: (2, 0)})
    placed = reoptimize(base, [2, 3], time_limit=2.0)
    assert placed is not None and placed.timetable.period[:2] == (1, 2) and not placed.timetable.unplaced
    assert placed.cost == evaluate(placed.timetable) and placed.cost.hard == 0


def test_room_choices_keep_the_best_fitting_rooms_and_the_own_one() -> None:
    inst = tiny([("a", "t1", 1, 1, 50)], [("tiny", 5), ("own", 10), ("fit", 50), ("big", 60), ("huge", 500)])
    placement = build_placement(place(inst, {0: (0, 1)}), [0], room_choices=2)
    assert {r for _, r in placement.z[0]} == {1, 2, 3}  # its room, then the two best fits


def comp01_constructed() -> Timetable:
    inst = load("comp01")
    return feasible_state(Timetable.empty(inst), random.Random(0), time.monotonic() + 5, never_stop).to_timetable()


def test_improve_clusters_on_comp01_improves_and_reports_each_cluster() -> None:
    start = comp01_constructed()
    clusters = cluster_courses(start.instance, max_lectures=60, seed=0)
    seen: list[tuple[int, bool]] = []
    tt = improve_clusters(
        start, clusters, time_limit=6.0, workers=1, seed=0, should_stop=never_stop,
        on_cluster=lambda done, total, found, cost: seen.append((done, total, found, cost)),
    )
    # Each cluster's end, and CP-SAT's solutions while a cluster is being solved, in order.
    dones = [done for done, *_ in seen]
    assert dones == sorted(dones) and set(range(1, len(clusters) + 1)) <= set(dones)
    improved = [(found, cost) for _, _, found, cost in seen if found is not None]
    assert improved and all(cost == evaluate(found) for found, cost in improved)
    assert not tt.unplaced and evaluate(tt) == improved[-1][1] and evaluate(tt).soft < evaluate(start).soft


def test_improve_clusters_keeps_to_its_budget_whatever_the_clusters() -> None:
    start = comp01_constructed()
    whole = cluster_courses(start.instance, max_lectures=start.instance.total_lectures, seed=0)
    began = time.monotonic()
    improve_clusters(start, whole, time_limit=1.5, workers=1, seed=0, should_stop=never_stop, on_cluster=lambda *_: None)
    assert time.monotonic() - began < 3.0


def test_stop_request_ends_the_cluster_stage_promptly() -> None:
    start = comp01_constructed()
    stop, asked, timer = stop_later(1.0)
    whole = cluster_courses(start.instance, max_lectures=start.instance.total_lectures, seed=0)
    tt = improve_clusters(start, whole, time_limit=120.0, workers=1, seed=0, should_stop=stop.is_set,
                          on_cluster=lambda *_: None)
    timer.cancel()
    assert asked and time.monotonic() - asked[0] < 2.0
    assert not tt.unplaced and evaluate(tt).hard == 0
