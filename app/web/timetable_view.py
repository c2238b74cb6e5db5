"""A job's best timetable in the three forms GET /api/jobs/{id}/timetable serves."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from saga.jobs import Feasibility
from solver.evaluate import Cost, course_period_table
from solver.jsonform import timetable_to_json
from solver.timetable import Timetable

CSV_COLUMNS = ("course", "room", "day", "period", "teacher", "curricula")
# More are not listed (the page shows a handful; the cost counts them all).
MAX_VIOLATIONS = 1000
# A spreadsheet reads a cell starting with one of these as a formula (or strips it):
# an id like "=HYPERLINK(...)" must reach it as text, so such a cell gets a leading quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def hard_violations(timetable: Timetable) -> list[dict[str, str]]:
    """Each hard-constraint violation in plain words (soft costs are in the cost breakdown),
    at most MAX_VIOLATIONS of them: the count of all is in the cost. Array work per period,
    not per pair of courses, so a dense conflict matrix costs no Python loop over its pairs."""
    ix = timetable.instance.index
    tt = course_period_table(timetable)
    busy = tt >= 0
    found = []
    for c in np.nonzero(busy.sum(axis=1) != ix.lectures)[0][:MAX_VIOLATIONS]:
        found.append(("lectures", f"{ix.course_ids[c]} has {int(busy[c].sum())} of {int(ix.lectures[c])} lectures placed"))
    for a, b, p in _clashes(busy, ix.conflict)[:MAX_VIOLATIONS]:
        found.append(("conflicts", f"{ix.course_ids[a]} and {ix.course_ids[b]} clash {_when(p, ix.periods_per_day)}"))
    courses, periods = np.nonzero(busy & ix.unavailable)
    for c, p in zip(courses[:MAX_VIOLATIONS], periods[:MAX_VIOLATIONS]):
        found.append(("availability", f"{ix.course_ids[c]} is placed {_when(p, ix.periods_per_day)}, when it is unavailable"))
    for r, p, n in _double_bookings(tt, ix.n_rooms)[:MAX_VIOLATIONS]:
        found.append(("room_occupation", f"room {ix.room_ids[r]} holds {n} lectures {_when(p, ix.periods_per_day)}"))
    return [{"constraint": kind, "message": message} for kind, message in found[:MAX_VIOLATIONS]]


def _clashes(busy: np.ndarray, conflict: np.ndarray) -> list[tuple[int, int, int]]:
    """(course a, course b, period) with a < b in conflict and both busy then, by a, b, period;
    the first MAX_VIOLATIONS only, picked in arrays (a bad timetable can have millions)."""
    found = []
    for p in range(busy.shape[1]):
        courses = np.flatnonzero(busy[:, p])
        i, j = np.nonzero(np.triu(conflict[np.ix_(courses, courses)], k=1))
        found.append(np.stack([courses[i], courses[j], np.full(len(i), p)]))
    a, b, period = np.concatenate(found, axis=1) if found else np.zeros((3, 0), dtype=np.int64)
    first = np.lexsort((period, b, a))[:MAX_VIOLATIONS]
    return [(int(a[k]), int(b[k]), int(period[k])) for k in first]


def _double_bookings(tt: np.ndarray, n_rooms: int) -> list[tuple[int, int, int]]:
    """(room, period, lectures) for each room holding more than one lecture in a period, by room, period."""
    found = []
    for p in range(tt.shape[1]):
        rooms = tt[:, p]
        counts = np.bincount(rooms[rooms >= 0], minlength=n_rooms)
        found += [(int(r), p, int(counts[r])) for r in np.flatnonzero(counts > 1)]
    return sorted(found)


def _when(period: int, per_day: int) -> str:
    day, slot = divmod(int(period), per_day)
    return f"on day {day} period {slot}"


def as_json(job_id: str, status: str, timetable: Timetable, cost: Cost) -> dict[str, Any]:
    instance = timetable.instance
    data = timetable_to_json(timetable, cost)
    feasibility = Feasibility.of(timetable, cost)
    return {
        "job_id": job_id, "status": status, **data, "lectures": _with_sizes(timetable, data["lectures"]),
        "days": instance.days, "periods_per_day": instance.periods_per_day, "violations": hard_violations(timetable),
        # "unplaced" is already the list of unplaced lectures here; its length has a name of its own.
        "feasible": feasibility.feasible, "unplaced_count": feasibility.unplaced,
        "hard_violations": feasibility.hard_violations,
    }


def _with_sizes(timetable: Timetable, lectures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adds the figures the page needs to point at soft-cost offenders (too-small rooms, too few days)."""
    courses = {c.id: c for c in timetable.instance.courses}
    capacity = {r.id: r.capacity for r in timetable.instance.rooms}
    return [
        {**row, "students": courses[row["course"]].students, "capacity": capacity[row["room"]],
         "min_working_days": courses[row["course"]].min_working_days}
        for row in lectures
    ]


def as_csv(timetable: Timetable, cost: Cost) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in timetable_to_json(timetable, cost)["lectures"]:
        cells = {**row, "curricula": " ".join(row["curricula"])}
        writer.writerow({k: csv_cell(v) for k, v in cells.items()})
    return out.getvalue()


def csv_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, made inert with a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
