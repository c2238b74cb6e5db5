"""Clustering: a deterministic partition into connected, bounded clusters."""

from __future__ import annotations

import pytest

from solver.cluster import cluster_courses
from solver.generate import generate
from tests.test_cpsat import load, tiny


@pytest.mark.parametrize("max_lectures", [20, 60])
def test_clusters_partition_the_courses_within_the_bound(max_lectures: int) -> None:
    inst = load("comp01")
    clusters = cluster_courses(inst, max_lectures=max_lectures, seed=0)
    flat = [c for cl in clusters for c in cl]
    assert sorted(flat) == list(range(inst.index.n_courses))
    lectures = inst.index.lectures
    assert all(lectures[list(cl)].sum() <= max_lectures or len(cl) == 1 for cl in clusters)


def test_same_seed_same_clusters() -> None:
    inst = generate(courses=40, rooms=6, curricula=10, seed=3)
    assert cluster_courses(inst, max_lectures=30, seed=7) == cluster_courses(inst, max_lectures=30, seed=7)


def test_each_cluster_is_connected_in_the_conflict_graph() -> None:
    inst = load("comp01")
    conflict = inst.index.conflict
    for cl in cluster_courses(inst, max_lectures=40, seed=1):
        reached, frontier = {cl[0]}, [cl[0]]
        while frontier:
            c = frontier.pop()
            for d in cl:
                if d not in reached and conflict[c, d]:
                    reached.add(d)
                    frontier.append(d)
        assert reached == set(cl)


def test_unrelated_courses_are_not_grouped_and_the_most_constrained_come_first() -> None:
    courses = [("a", "t1", 2, 1, 5), ("b", "t1", 3, 1, 5), ("c", "t2", 1, 1, 5), ("d", "t3", 4, 1, 5)]
    inst = tiny(courses, [("r", 10)], unavailable=[("d", 0, 0), ("d", 0, 1)])
    clusters = cluster_courses(inst, max_lectures=10, seed=0)
    assert {frozenset(cl) for cl in clusters} == {frozenset({0, 1}), frozenset({2}), frozenset({3})}
    # d: 4 lectures in 2 usable periods is the most pressed; a and b share a teacher.
    assert clusters[0] == (3,)


def test_a_course_larger_than_the_bound_is_a_cluster_of_its_own() -> None:
    inst = tiny([("a", "t1", 5, 1, 5), ("b", "t1", 1, 1, 5)], [("r", 10)], periods_per_day=8)
    assert {frozenset(cl) for cl in cluster_courses(inst, max_lectures=3, seed=0)} == {frozenset({0}), frozenset({1})}
