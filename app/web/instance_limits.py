"""Instance sizes the service accepts: tighter than the solver's readers (solver/validate.py).

The readers' limits only keep arrays allocatable. Past the reader, a submission builds
the conflict matrix (courses x courses, plus each curriculum's square) and runs the
pre-solve check; a job's child builds the clustering's tie weights (courses x courses);
the JSON timetable view walks every lecture.
The limits below keep each of those to a fraction of a second on the largest instance
they let through; `python -m tests.largest_instances` measures it. They are checked
before any of that work starts, on counts the parsed instance already holds.
"""

from __future__ import annotations

from app.web.errors import ApiError
from solver.model import Instance

# The bench's largest size (about 9,000 lectures) has 2,100 courses, 290 rooms and 700
# curricula of up to a few dozen courses; these leave room above it.
MAX_COURSES = 2500
MAX_ROOMS = 500
MAX_CURRICULA = 2500
MAX_LECTURES = 12_000
MAX_CURRICULUM_COURSES = 300  # more courses than a week has periods cannot be timetabled anyway
MAX_MEMBERSHIPS = 25_000  # courses listed by all curricula together


def refuse_oversized(instance: Instance) -> None:
    """400 naming the first size over its limit."""
    _at_most(len(instance.courses), MAX_COURSES, "courses", "instance.courses")
    _at_most(len(instance.rooms), MAX_ROOMS, "rooms", "instance.rooms")
    _at_most(len(instance.curricula), MAX_CURRICULA, "curricula", "instance.curricula")
    _at_most(instance.total_lectures, MAX_LECTURES, "lectures", "instance.courses")
    members = 0
    for i, q in enumerate(instance.curricula):
        where = f"instance.curricula[{i}].courses"
        _at_most(len(q.courses), MAX_CURRICULUM_COURSES, f"courses in curriculum {q.id}", where)
        members += len(q.courses)
        _at_most(members, MAX_MEMBERSHIPS, "courses listed by the curricula together", where)


def _at_most(value: int, limit: int, what: str, field: str) -> None:
    if value > limit:
        raise ApiError(400, "instance_too_large",
                       f"{field}: {value:,} {what}, more than this service accepts (at most {limit:,}).")
