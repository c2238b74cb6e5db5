"""The compiled hot loop of the local search: simulated annealing over hard-feasible moves.

The profile of the pure-Python search showed most of its time in interpreter overhead
(attribute lookups and list indexing around a few integer additions per move), so the
state and its moves live here as numpy arrays and numba functions: about a hundred times
more moves per second, which is what the annealing needs to get anywhere at the ITC
budget. Compiled functions are cached on disk (`cache=True`): only the first run on a
machine pays for the compilation.

The state is two tuples of int arrays (numba compiles tuples of arrays into plain
arguments; `build` makes them):
- static `st`: 0 course of each lecture, 1 teacher of each course, 2–3 curricula of each
  course (CSR pointers, indices), 4 unavailable[course, period], 5 capacity penalty[course,
  room], 6 min working days, 7 dims (P_, R_, ...), 8 first lecture of each course,
  9 conflict[course, course], 10 students;
- dynamic `dy`: 0 period and 1 room of each lecture, 2 slot[period, room] → lecture or -1,
  3 teacher × period and 4 curriculum × period counts, 5 course × day counts, 6 days used,
  7 course × room counts, 8 rooms used, 9 the soft components (CAPACITY, MWD, ...).
The state is hard-feasible at all times
(every lecture placed, no clash, one lecture per room and period, no unavailable
period), so a course has at most one lecture per period and the validator's cells are
the lectures. Each move computes its soft cost change exactly (simple moves from the
counters, compound ones by applying and undoing), asks the Metropolis rule and applies
or drops it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from solver.evaluate import COMPACTNESS_WEIGHT, MIN_WORKING_DAYS_WEIGHT, evaluate
from solver.model import Course, Curriculum, Instance, Room
from solver.timetable import Timetable

# Neighbourhoods, by index (`solver.refine` names them for the bandit).
SLOT, ROOM, COURSE_ROOMS, KEMPE = 0, 1, 2, 3
MWD_WEIGHT, CC_WEIGHT = MIN_WORKING_DAYS_WEIGHT, COMPACTNESS_WEIGHT
# cost[]: soft components, kept exact by every change
CAPACITY, MWD, ISOLATED, STABILITY = 0, 1, 2, 3
# dims[]
P_, R_, D_, PPD_, C_, L_ = 0, 1, 2, 3, 4, 5
DROPPED = 1 << 40  # what a move returns when it is infeasible or refused
# Chance that a lecture drawn where it costs nothing is put back for a second draw: moves
# start more often where the cost is, and still anywhere.
REDRAW = 0.5


@njit(cache=True)
def seed(s: int) -> None:
    np.random.seed(s)


@njit(cache=True)
def soft(cost: np.ndarray) -> int:
    return cost[CAPACITY] + cost[MWD] + CC_WEIGHT * cost[ISOLATED] + cost[STABILITY]


@njit(cache=True)
def _isolated_at(cq: np.ndarray, q: int, p: int, n_p: int, ppd: int) -> int:
    """Lectures of curriculum `q` in `p` that the validator counts as isolated."""
    k = cq[q, p]
    if k == 0:
        return 0
    has_prev = p > 0 and cq[q, p - 1] > 0
    has_next = p + 1 < n_p and cq[q, p + 1] > 0
    slot = p % ppd
    if (slot == 0 and not has_next) or (slot == ppd - 1 and not has_prev) or not (has_next or has_prev):
        return k
    return 0


@njit(cache=True)
def _isolated_near(cq: np.ndarray, q: int, a: int, b: int, n_p: int, ppd: int) -> int:
    """Isolated lectures of `q` in the periods next to or at `a` and `b` (each counted once)."""
    total = 0
    for p in range(max(a - 1, 0), min(a + 2, n_p)):
        total += _isolated_at(cq, q, p, n_p, ppd)
    for p in range(max(b - 1, 0), min(b + 2, n_p)):
        if p < a - 1 or p > a + 1:
            total += _isolated_at(cq, q, p, n_p, ppd)
    return total


@njit(cache=True)
def _compact_delta(cq: np.ndarray, q: int, a: int, b: int, n_p: int, ppd: int) -> int:
    """Change in isolated lectures of `q` when one of its courses moves from period a to b."""
    before = _isolated_near(cq, q, a, b, n_p, ppd)
    cq[q, a] -= 1
    cq[q, b] += 1
    after = _isolated_near(cq, q, a, b, n_p, ppd)
    cq[q, a] += 1
    cq[q, b] -= 1
    return after - before


@njit(cache=True)
def _room_delta(st, dy, c: int, r1: int, r2: int) -> int:
    penalty = st[5]
    cr, rooms_used = dy[7], dy[8]
    if r1 == r2:
        return 0
    u = rooms_used[c]
    nu = u - (1 if cr[c, r1] == 1 else 0) + (1 if cr[c, r2] == 0 else 0)
    return penalty[c, r2] - penalty[c, r1] + max(nu - 1, 0) - max(u - 1, 0)


@njit(cache=True)
def _day_delta(st, dy, c: int, p1: int, p2: int) -> int:
    min_days, dims = st[6], st[7]
    cd, days_used = dy[5], dy[6]
    d1, d2 = p1 // dims[PPD_], p2 // dims[PPD_]
    if d1 == d2:
        return 0
    u = days_used[c]
    nu = u - (1 if cd[c, d1] == 1 else 0) + (1 if cd[c, d2] == 0 else 0)
    m = min_days[c]
    return MWD_WEIGHT * (max(m - nu, 0) - max(m - u, 0))


@njit(cache=True)
def _shares_curriculum(st, c: int, q: int) -> bool:
    ptr, idx = st[2], st[3]
    for k in range(ptr[c], ptr[c + 1]):
        if idx[k] == q:
            return True
    return False


@njit(cache=True)
def _period_delta(st, dy, c: int, p1: int, p2: int, other: int) -> int:
    """Soft change of course `c` leaving p1 for p2, with course `other` (or -1) going the
    opposite way: curricula both belong to keep their counts and lose nothing."""
    if p1 == p2:
        return 0
    ptr, idx, dims = st[2], st[3], st[7]
    cq = dy[4]
    d = _day_delta(st, dy, c, p1, p2)
    iso = 0
    for k in range(ptr[c], ptr[c + 1]):
        q = idx[k]
        if other < 0 or not _shares_curriculum(st, other, q):
            iso += _compact_delta(cq, q, p1, p2, dims[P_], dims[PPD_])
    return d + CC_WEIGHT * iso


@njit(cache=True)
def _can_enter(st, dy, c: int, p: int, other: int) -> bool:
    """Course `c` may be taught in `p` once course `other` (or -1) has left it."""
    course_teacher, ptr, idx, unavailable = st[1], st[2], st[3], st[4]
    tq, cq = dy[3], dy[4]
    if unavailable[c, p]:
        return False
    t = course_teacher[c]
    busy = tq[t, p] - (1 if other >= 0 and course_teacher[other] == t else 0)
    if busy > 0:
        return False
    for k in range(ptr[c], ptr[c + 1]):
        q = idx[k]
        if cq[q, p] - (1 if other >= 0 and _shares_curriculum(st, other, q) else 0) > 0:
            return False
    return True


@njit(cache=True)
def _relocate(st, dy, l: int, p2: int, r2: int) -> None:
    """Lecture `l` to (p2, r2) in every counter and the cost, but not in the room table
    (`slot`), which the caller keeps: swaps and chains pass through shared slots."""
    course_of, course_teacher, ptr, idx, min_days, dims, penalty = st[0], st[1], st[2], st[3], st[6], st[7], st[5]
    period, room, _slot, tq, cq, cd, days_used, cr, rooms_used, cost = dy
    c, p1, r1 = course_of[l], period[l], room[l]
    if r1 != r2:
        u = rooms_used[c]
        cost[CAPACITY] += penalty[c, r2] - penalty[c, r1]
        cr[c, r1] -= 1
        cr[c, r2] += 1
        nu = u - (1 if cr[c, r1] == 0 else 0) + (1 if cr[c, r2] == 1 else 0)
        rooms_used[c] = nu
        cost[STABILITY] += max(nu - 1, 0) - max(u - 1, 0)
        room[l] = r2
    if p1 != p2:
        ppd = dims[PPD_]
        d1, d2 = p1 // ppd, p2 // ppd
        if d1 != d2:
            u, m = days_used[c], min_days[c]
            cd[c, d1] -= 1
            cd[c, d2] += 1
            nu = u - (1 if cd[c, d1] == 0 else 0) + (1 if cd[c, d2] == 1 else 0)
            days_used[c] = nu
            cost[MWD] += MWD_WEIGHT * (max(m - nu, 0) - max(m - u, 0))
        for k in range(ptr[c], ptr[c + 1]):
            q = idx[k]
            cost[ISOLATED] += _compact_delta(cq, q, p1, p2, dims[P_], ppd)
            cq[q, p1] -= 1
            cq[q, p2] += 1
        t = course_teacher[c]
        tq[t, p1] -= 1
        tq[t, p2] += 1
        period[l] = p2


@njit(cache=True)
def _costs_nothing(st, dy, l: int) -> bool:
    """Lecture `l` adds nothing to any soft component where it is."""
    course_of, ptr, idx, penalty, min_days, dims = st[0], st[2], st[3], st[5], st[6], st[7]
    period, room, cq, days_used, rooms_used = dy[0], dy[1], dy[4], dy[6], dy[8]
    c, p = course_of[l], period[l]
    if penalty[c, room[l]] > 0 or days_used[c] < min_days[c] or rooms_used[c] > 1:
        return False
    for k in range(ptr[c], ptr[c + 1]):
        if _isolated_at(cq, idx[k], p, dims[P_], dims[PPD_]) > 0:
            return False
    return True


@njit(cache=True)
def _draw_lecture(st, dy) -> int:
    n = st[7][L_]
    l = np.random.randint(n)
    if np.random.random() < REDRAW and _costs_nothing(st, dy, l):
        l = np.random.randint(n)
    return l


@njit(cache=True)
def _metropolis(d: int, temperature: float) -> bool:
    return d <= 0 or np.random.random() < np.exp(-d / temperature)


@njit(cache=True)
def _slot_move(st, dy, temperature: float) -> int:
    """A random lecture to a random (period, room): moved if the room is free, swapped with
    the lecture there otherwise. Returns the applied delta, or a huge value when dropped."""
    course_of, dims = st[0], st[7]
    period, room, slot = dy[0], dy[1], dy[2]
    l = _draw_lecture(st, dy)
    p2, r2 = np.random.randint(dims[P_]), np.random.randint(dims[R_])
    c, p1, r1 = course_of[l], period[l], room[l]
    o = slot[p2, r2]
    if o == l:
        return DROPPED
    if o < 0:
        if p1 != p2 and not _can_enter(st, dy, c, p2, -1):
            return DROPPED
        d = _room_delta(st, dy, c, r1, r2) + _period_delta(st, dy, c, p1, p2, -1)
        if not _metropolis(d, temperature):
            return DROPPED
        slot[p1, r1] = -1
        _relocate(st, dy, l, p2, r2)
        slot[p2, r2] = l
        return d
    co = course_of[o]
    if co == c:
        return DROPPED
    if p1 != p2 and not (_can_enter(st, dy, c, p2, co) and _can_enter(st, dy, co, p1, c)):
        return DROPPED
    d = _room_delta(st, dy, c, r1, r2) + _room_delta(st, dy, co, r2, r1)
    d += _period_delta(st, dy, c, p1, p2, co) + _period_delta(st, dy, co, p2, p1, c)
    if not _metropolis(d, temperature):
        return DROPPED
    _relocate(st, dy, l, p2, r2)
    _relocate(st, dy, o, p1, r1)
    slot[p2, r2], slot[p1, r1] = l, o
    return d


@njit(cache=True)
def _room_move(st, dy, temperature: float) -> int:
    """A random lecture to another room of its period, swapping with the occupant."""
    course_of, dims = st[0], st[7]
    period, room, slot = dy[0], dy[1], dy[2]
    l = _draw_lecture(st, dy)
    r2 = np.random.randint(dims[R_])
    c, p, r1 = course_of[l], period[l], room[l]
    if r2 == r1:
        return DROPPED
    o = slot[p, r2]
    d = _room_delta(st, dy, c, r1, r2)
    if o >= 0:
        if course_of[o] == c:
            return DROPPED
        d += _room_delta(st, dy, course_of[o], r2, r1)
    if not _metropolis(d, temperature):
        return DROPPED
    _relocate(st, dy, l, p, r2)
    slot[p, r2] = l
    slot[p, r1] = o
    if o >= 0:
        _relocate(st, dy, o, p, r1)
    return d



@njit(cache=True)
def _accept_or_undo(st, dy, moved: np.ndarray, old_p: np.ndarray, old_r: np.ndarray, n: int, before: int, temperature: float) -> int:
    """Keep the compound move just applied to `moved[:n]`, or put those lectures back."""
    d = soft(dy[9]) - before
    if _metropolis(d, temperature):
        return d
    _place_all(st, dy, moved, old_p, old_r, n)
    return DROPPED


@njit(cache=True)
def _place_all(st, dy, lectures: np.ndarray, periods: np.ndarray, rooms: np.ndarray, n: int) -> None:
    """Lectures[i] to (periods[i], rooms[i]) for i < n, all leaving before any arrives."""
    period, room, slot = dy[0], dy[1], dy[2]
    for i in range(n):
        l = lectures[i]
        if slot[period[l], room[l]] == l:
            slot[period[l], room[l]] = -1
    for i in range(n):
        _relocate(st, dy, lectures[i], periods[i], rooms[i])
    for i in range(n):
        slot[periods[i], rooms[i]] = lectures[i]


@njit(cache=True)
def _course_rooms(st, dy, temperature: float, buf) -> int:
    """All lectures of a random course into the room of one of them, swapping rooms with
    the occupants of that room (the room-stability move)."""
    course_of, first, dims = st[0], st[8], st[7]
    period, room, slot, rooms_used = dy[0], dy[1], dy[2], dy[8]
    l = _draw_lecture(st, dy)
    c = course_of[l]
    if rooms_used[c] < 2:
        return DROPPED
    r = room[first[c] + np.random.randint(first[c + 1] - first[c])]
    moved, new_p, new_r, old_p, old_r = buf
    n = 0
    for x in range(first[c], first[c + 1]):
        if room[x] == r:
            continue
        p, o = period[x], slot[period[x], r]
        moved[n], new_p[n], new_r[n], old_p[n], old_r[n] = x, p, r, p, room[x]
        n += 1
        if o >= 0:
            moved[n], new_p[n], new_r[n], old_p[n], old_r[n] = o, p, room[x], p, r
            n += 1
    before = soft(dy[9])
    _place_all(st, dy, moved, new_p, new_r, n)
    return _accept_or_undo(st, dy, moved, old_p, old_r, n, before, temperature)


@njit(cache=True)
def _kempe(st, dy, temperature: float, buf) -> int:
    """Exchange a random lecture's period p1 with a random p2 together with its Kempe chain
    (the lectures of both periods linked to it by a shared course, curriculum or teacher);
    the lectures that change period keep their room where it is free, else take the free
    room that costs least."""
    course_of, unavailable, dims, conflict = st[0], st[4], st[7], st[9]
    period, slot = dy[0], dy[2]
    n_r = dims[R_]
    l = _draw_lecture(st, dy)
    p1, p2 = period[l], np.random.randint(dims[P_])
    if p1 == p2:
        return DROPPED
    moved, new_p, new_r, old_p, old_r = buf
    n, head = 1, 0
    moved[0] = l
    while head < n:  # breadth-first over the chain; moved[] doubles as the queue
        x = moved[head]
        head += 1
        other = p2 if period[x] == p1 else p1
        cx = course_of[x]
        for r in range(n_r):
            y = slot[other, r]
            if y >= 0 and (course_of[y] == cx or conflict[cx, course_of[y]]) and not _listed(moved, n, y):
                moved[n] = y
                n += 1
    for i in range(n):
        x = moved[i]
        old_p[i], old_r[i] = period[x], dy[1][x]
        new_p[i] = p2 if period[x] == p1 else p1
        if unavailable[course_of[x], new_p[i]]:
            return DROPPED
    if not _pick_rooms(st, dy, moved, new_p, new_r, n, p1, p2) or not _pick_rooms(st, dy, moved, new_p, new_r, n, p2, p1):
        return DROPPED
    before = soft(dy[9])
    _place_all(st, dy, moved, new_p, new_r, n)
    return _accept_or_undo(st, dy, moved, old_p, old_r, n, before, temperature)


@njit(cache=True)
def _listed(xs: np.ndarray, n: int, y: int) -> bool:
    for i in range(n):
        if xs[i] == y:
            return True
    return False


@njit(cache=True)
def _pick_rooms(st, dy, moved, new_p, new_r, n: int, src: int, dst: int) -> bool:
    """Rooms in `dst` for the chain's lectures coming from `src`, largest course first."""
    course_of, penalty, students, dims = st[0], st[5], st[10], st[7]
    room, slot, cr = dy[1], dy[2], dy[7]
    n_r = dims[R_]
    taken = np.zeros(n_r, dtype=np.bool_)
    for r in range(n_r):
        y = slot[dst, r]
        taken[r] = y >= 0 and not _listed(moved, n, y)
    incoming = np.array([i for i in range(n) if new_p[i] == dst], dtype=np.int64)
    for i in incoming[np.argsort(-students[course_of[moved[incoming]]], kind="mergesort")]:
        x = moved[i]
        c, r = course_of[x], room[x]
        if taken[r]:
            r, best = -1, 1 << 60
            for s in range(n_r):
                if not taken[s]:
                    key = penalty[c, s] + (1 if cr[c, s] == 0 else 0)
                    if key < best:
                        r, best = s, key
            if r < 0:
                return False
        taken[r] = True
        new_r[i] = r
    return True


@njit(cache=True)
def step(st, dy, buf, op: int, temperature: float) -> int:
    """One proposal of neighbourhood `op`: its soft cost change if applied, else DROPPED."""
    if op == SLOT:
        return _slot_move(st, dy, temperature)
    if op == ROOM:
        return _room_move(st, dy, temperature)
    if op == COURSE_ROOMS:
        return _course_rooms(st, dy, temperature, buf)
    return _kempe(st, dy, temperature, buf)


@njit(cache=True, nogil=True)  # chains in threads run at once
def anneal(st, dy, buf, op: int, n: int, t_from: float, t_to: float, best_period, best_room, best) -> tuple:
    """`n` proposals of neighbourhood `op`, the temperature falling geometrically from
    `t_from` to `t_to`; `best` ([soft]) and its arrays follow every strict improvement.
    `buf` is scratch room for compound moves. Returns (proposals made, accepted, cost
    removed by downhill steps)."""
    period, room, cost = dy[0], dy[1], dy[9]
    ratio = (t_to / t_from) ** (1.0 / max(n, 1))
    temperature = t_from
    accepted, gained = 0, 0
    for k in range(n):
        d = step(st, dy, buf, op, temperature)
        temperature *= ratio
        if d == DROPPED:
            continue
        accepted += 1
        if d < 0:
            gained -= d
            s = soft(cost)
            if s < best[0]:
                best[0] = s
                best_period[:] = period
                best_room[:] = room
                if s == 0:  # nothing can improve on it
                    return k + 1, accepted, gained
    return n, accepted, gained

def build(timetable: Timetable) -> tuple[tuple, tuple, tuple]:
    """The kernel's (static, dynamic, scratch) arrays for a complete, hard-feasible timetable."""
    ix = timetable.instance.index
    n_p, n_r, n_d, ppd = ix.n_periods, ix.n_rooms, ix.days, ix.periods_per_day
    n_c, n_q, n_l = ix.n_courses, len(ix.curriculum_courses), ix.n_lectures
    ptr = np.zeros(n_c + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(qs) for qs in ix.curricula_of])
    idx = np.array([q for qs in ix.curricula_of for q in qs], dtype=np.int64)
    dims = np.array([n_p, n_r, n_d, ppd, n_c, n_l], dtype=np.int64)
    i64 = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    static = (i64(ix.lecture_course), i64(ix.teacher), ptr, idx, np.ascontiguousarray(ix.unavailable),
              i64(ix.capacity_penalty), i64(ix.min_days), dims, i64(ix.first_lecture),
              np.ascontiguousarray(ix.conflict), i64(ix.students))
    period, room = i64(timetable.period), i64(timetable.room)
    if n_l and (period.min() < 0 or room.min() < 0):
        raise ValueError("the kernel needs every lecture placed")
    course = static[0]
    slot = np.full((n_p, n_r), -1, dtype=np.int64)
    slot[period, room] = np.arange(n_l)
    busy = np.zeros((n_c, n_p), dtype=np.int64)
    np.add.at(busy, (course, period), 1)
    tq = np.zeros((len(ix.teacher_ids), n_p), dtype=np.int64)
    np.add.at(tq, (static[1][course], period), 1)
    cq = np.zeros((n_q, n_p), dtype=np.int64)
    for q, members in enumerate(ix.curriculum_courses):
        cq[q] = busy[list(members)].sum(axis=0)
    cd = busy.reshape(n_c, n_d, ppd).sum(axis=2)
    cr = np.zeros((n_c, n_r), dtype=np.int64)
    np.add.at(cr, (course, room), 1)
    cost = evaluate(timetable)
    if cost.hard:
        raise ValueError("the kernel needs a hard-feasible timetable")
    soft_parts = np.array([cost.room_capacity, cost.min_working_days,
                           cost.curriculum_compactness // CC_WEIGHT, cost.room_stability], dtype=np.int64)
    dynamic = (period, room, slot, tq, cq, cd, (cd > 0).sum(axis=1), cr, (cr > 0).sum(axis=1), soft_parts)
    size = 2 * max(n_r, int(ix.lectures.max(initial=0))) + 2
    scratch = tuple(np.empty(size, dtype=np.int64) for _ in range(5))
    return static, dynamic, scratch


def timetable_of(instance: Instance, period: np.ndarray, room: np.ndarray) -> Timetable:
    return Timetable(instance, tuple(period.tolist()), tuple(room.tolist()))


def warm_up() -> None:
    """Compile (or load from the disk cache) every kernel function, on a two-lecture
    problem, so that the first real search does not pay for it inside its time budget."""
    instance = Instance(
        "warm-up", days=2, periods_per_day=1,
        courses=(Course("a", "t", 1, 1, 1), Course("b", "u", 1, 1, 1)),
        rooms=(Room("r", 1), Room("s", 1)), curricula=(Curriculum("q", ("a", "b")),), unavailability=(),
    )
    static, dynamic, scratch = build(Timetable(instance, (0, 1), (0, 1)))
    best = np.array([soft(dynamic[9])])
    seed(0)
    for op in (SLOT, ROOM, COURSE_ROOMS, KEMPE):
        anneal(static, dynamic, scratch, op, 8, 1.0, 0.5, dynamic[0].copy(), dynamic[1].copy(), best)
