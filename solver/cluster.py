"""Split the courses into clusters that CP-SAT places one after another.

A cluster grows greedily from the most constrained course left, always taking the
course most tied to it (shared curricula and teacher), so that courses competing for
the same periods are decided together; clusters come out most constrained first.
"""

from __future__ import annotations

import random

import numpy as np

from solver.model import Index, Instance


def cluster_courses(instance: Instance, *, max_lectures: int, seed: int) -> tuple[tuple[int, ...], ...]:
    """Course indices per cluster, in solving order. Every course is in exactly one
    cluster; a cluster holds at most `max_lectures` lectures unless a single course
    has more."""
    ix = instance.index
    weight = _tie_weights(ix)
    pressure = _pressure(ix, weight)
    # The seed breaks ties only, so any seed keeps the most constrained courses first.
    jitter = np.array([random.Random(f"{seed}:{c}").random() for c in range(ix.n_courses)]) * 1e-6
    priority = pressure + jitter
    left = np.ones(ix.n_courses, dtype=bool)
    clusters = []
    while left.any():
        start = int(np.flatnonzero(left)[np.argmax(priority[left])])
        members = _grow(start, left, weight, priority, ix.lectures, max_lectures)
        left[members] = False
        clusters.append(tuple(members))
    return tuple(clusters)


def _tie_weights(ix: Index) -> np.ndarray:
    """How many curricula two courses share, plus one for a shared teacher."""
    n = ix.n_courses
    member = np.zeros((n, len(ix.curriculum_courses)), dtype=np.float32)
    for q, courses in enumerate(ix.curriculum_courses):
        member[list(courses), q] = 1
    # A float product runs on BLAS (an integer one does not: seconds at 2,000 courses)
    # and is exact: each entry counts at most the curricula.
    shared = np.rint(member @ member.T).astype(np.int64)
    weight = shared + (ix.teacher[:, None] == ix.teacher[None, :])
    np.fill_diagonal(weight, 0)
    return weight


def _pressure(ix: Index, weight: np.ndarray) -> np.ndarray:
    """Lectures that compete with a course's own, per period it may use."""
    competing = (weight > 0).astype(np.int64) @ ix.lectures + ix.lectures
    usable = np.maximum(ix.n_periods - ix.unavailable.sum(axis=1), 1)
    return competing / usable


def _grow(
    start: int,
    left: np.ndarray,
    weight: np.ndarray,
    priority: np.ndarray,
    lectures: np.ndarray,
    max_lectures: int,
) -> list[int]:
    members, total = [start], int(lectures[start])
    open_ = left.copy()
    open_[start] = False
    tie = weight[start].astype(np.float64)
    while True:
        fits = open_ & (tie > 0) & (lectures + total <= max_lectures)
        if not fits.any():
            return members
        candidates = np.flatnonzero(fits)
        best = int(candidates[np.lexsort((-priority[candidates], -tie[candidates]))[0]])
        members.append(best)
        total += int(lectures[best])
        open_[best] = False
        tie += weight[best]
