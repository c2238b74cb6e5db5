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


def hard_violations(timetable: Timetable) -> list[dict[str, str]]:
    """Each hard-constraint violation in plain words (soft costs are in the cost breakdown)."""
    ix = timetable.instance.index
    tt = course_period_table(timetable)
    busy = tt >= 0
    found = []
    for c in np.nonzero(busy.sum(axis=1) != ix.lectures)[0]:
        found.append(("lectures", f"{ix.course_ids[c]} has {int(busy[c].sum())} of {int(ix.lectures[c])} lectures placed"))
    for a, b in zip(*np.nonzero(np.triu(ix.conflict, k=1))):
        for p in np.nonzero(busy[a] & busy[b])[0]:
            found.append(("conflicts", f"{ix.course_ids[a]} and {ix.course_ids[b]} clash {_when(p, ix.periods_per_day)}"))
    for c, p in zip(*np.nonzero(busy & ix.unavailable)):
        found.append(("availability", f"{ix.course_ids[c]} is placed {_when(p, ix.periods_per_day)}, when it is unavailable"))
    for r in range(ix.n_rooms):
        for p in np.nonzero((tt == r).sum(axis=0) > 1)[0]:
            found.append(("room_occupation", f"room {ix.room_ids[r]} holds {int((tt[:, p] == r).sum())} lectures {_when(p, ix.periods_per_day)}"))
    return [{"constraint": kind, "message": message} for kind, message in found]


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
        writer.writerow({**row, "curricula": " ".join(row["curricula"])})
    return out.getvalue()
