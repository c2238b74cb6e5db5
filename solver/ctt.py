"""The `.ctt` instance format and the `.sol` solution format (ITC-2007 track 3)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from solver.errors import InstanceError, shown
from solver.model import Course, Curriculum, Instance, Room, Unavailability
from solver.timetable import Assignment, Timetable
from solver.validate import Location, Sizes, check_contents, check_sizes, json_path

# Header field -> the section it counts (None: a plain value).
HEADER = {
    "Name": None,
    "Courses": "courses",
    "Rooms": "rooms",
    "Days": "days",
    "Periods_per_day": "periods_per_day",
    "Curricula": "curricula",
    "Constraints": "unavailability",
}
# Section keyword, the header field giving its row count, what one row is called, its columns.
SECTIONS = (
    ("COURSES:", "Courses", "course", ("course", "teacher", "lectures", "min_working_days", "students")),
    ("ROOMS:", "Rooms", "room", ("room", "capacity")),
    ("CURRICULA:", "Curricula", "curriculum", ("curriculum", "number_of_courses", "course...")),
    ("UNAVAILABILITY_CONSTRAINTS:", "Constraints", "unavailability", ("course", "day", "period")),
)
END = "END."
KEYWORDS = frozenset([s[0] for s in SECTIONS] + [END])
_INTEGER = re.compile(r"-?[0-9]{1,12}")
SOL_FIELDS = 4


@dataclass(frozen=True)
class _Line:
    number: int
    text: str

    @property
    def fields(self) -> list[str]:
        return self.text.split()


@dataclass
class _Source:
    """Line numbers of everything read, so semantic checks can point at them."""

    header: dict[str, int] = field(default_factory=dict)
    rows: dict[str, list[int]] = field(default_factory=dict)
    last_line: int = 1

    def __call__(self, section: str, index: int | None = None, field: str | None = None) -> Location:
        path = json_path(section, index, field)
        if index is not None:
            return Location(self.rows[section][index], path)
        key = next((k for k, s in HEADER.items() if s == section), "Name")
        return Location(self.header.get(key, self.last_line), path)


def parse_ctt(text: str, source: str = "<input>") -> Instance:
    """Parse `.ctt` text; `InstanceError` names the line and the problem. `source` is
    only a fallback name for an instance whose Name: is empty."""
    text = text.removeprefix("\ufeff")  # a byte order mark left by some editors
    lines = [_Line(n, t.strip()) for n, t in enumerate(text.splitlines(), start=1) if t.strip()]
    where = _Source(last_line=max(1, len(text.splitlines())))
    header, pos = _read_header(lines, where)
    sizes = Sizes(header["Days"], header["Periods_per_day"], header["Courses"], header["Rooms"],
                  header["Curricula"], header["Constraints"])
    check_sizes(sizes, where)
    rows: dict[str, list[_Line]] = {}
    for keyword, count_key, noun, columns in SECTIONS:
        rows[keyword], pos = _read_section(lines, pos, keyword, header[count_key], count_key, noun, where)
        where.rows[HEADER[count_key]] = [r.number for r in rows[keyword]]
    _expect_end(lines, pos, where)
    instance = Instance(
        name=str(header["Name"]) or source,
        days=header["Days"],
        periods_per_day=header["Periods_per_day"],
        courses=tuple(_course(r) for r in rows["COURSES:"]),
        rooms=tuple(_room(r) for r in rows["ROOMS:"]),
        curricula=tuple(_curriculum(r) for r in rows["CURRICULA:"]),
        unavailability=tuple(_unavailability(r) for r in rows["UNAVAILABILITY_CONSTRAINTS:"]),
    )
    check_contents(instance, where)
    return instance


def _read_header(lines: list[_Line], where: _Source) -> tuple[dict, int]:
    header: dict[str, str | int] = {}
    pos = 0
    while pos < len(lines) and lines[pos].text not in KEYWORDS:
        line = lines[pos]
        key, colon, value = line.text.partition(":")
        key = key.strip()
        if not colon or key not in HEADER:
            raise InstanceError(f"expected a header field such as 'Courses: 30', found {shown(line.text)}", line.number)
        if key in header:
            raise InstanceError(f"header field {key}: appears twice", line.number)
        header[key] = value.strip() if key == "Name" else _number(value.strip(), key, line.number)
        where.header[key] = line.number
        pos += 1
    end_line = lines[pos].number if pos < len(lines) else where.last_line
    for key in HEADER:
        if key not in header:
            raise InstanceError(f"header field {key}: is missing", end_line)
    return header, pos


def _read_section(lines: list[_Line], pos: int, keyword: str, count: int, count_key: str,
                  noun: str, where: _Source) -> tuple[list[_Line], int]:
    if pos >= len(lines):
        raise InstanceError(f"section {keyword} is missing (the text ends first)", where.last_line)
    if lines[pos].text != keyword:
        raise InstanceError(f"expected section {keyword}, found {shown(lines[pos].text)}", lines[pos].number)
    start = pos + 1
    end = start
    while end < len(lines) and lines[end].text not in KEYWORDS:
        end += 1
    rows = lines[start:end]
    if len(rows) > count:
        raise InstanceError(f"one {noun} row more than the header's {count_key}: {count}", rows[count].number)
    if len(rows) < count:
        at = lines[end].number if end < len(lines) else where.last_line
        raise InstanceError(f"section {keyword} has {len(rows)} rows but the header says {count_key}: {count}", at)
    return rows, end


def _expect_end(lines: list[_Line], pos: int, where: _Source) -> None:
    if pos >= len(lines):
        raise InstanceError(f"{END} is missing at the end", where.last_line)
    if lines[pos].text != END:
        raise InstanceError(f"expected {END}, found {shown(lines[pos].text)}", lines[pos].number)
    if pos + 1 < len(lines):
        raise InstanceError(f"unexpected text after {END}", lines[pos + 1].number)


def _fields(line: _Line, columns: tuple[str, ...], noun: str, at_least: bool = False) -> list[str]:
    fields = line.fields
    if len(fields) < len(columns) or (len(fields) > len(columns) and not at_least):
        expected = f"at least {len(columns)}" if at_least else str(len(columns))
        raise InstanceError(
            f"each {noun} row needs {expected} fields ({' '.join(columns)}), found {len(fields)}", line.number)
    return fields


def _number(token: str, what: str, line: int) -> int:
    if not _INTEGER.fullmatch(token):
        raise InstanceError(f"{what} must be a whole number, found {shown(token)}", line)
    return int(token)


def _course(line: _Line) -> Course:
    cid, teacher, lectures, days, students = _fields(line, SECTIONS[0][3], "course")
    n = line.number
    return Course(cid, teacher, _number(lectures, "lectures", n), _number(days, "min_working_days", n),
                  _number(students, "students", n))


def _room(line: _Line) -> Room:
    rid, capacity = _fields(line, SECTIONS[1][3], "room")
    return Room(rid, _number(capacity, "capacity", line.number))


def _curriculum(line: _Line) -> Curriculum:
    qid, count, *members = _fields(line, SECTIONS[2][3][:2], "curriculum", at_least=True)
    stated = _number(count, "the number of courses", line.number)
    if stated != len(members):
        raise InstanceError(f"curriculum {qid} says {stated} courses but lists {len(members)}", line.number)
    return Curriculum(qid, tuple(members))


def _unavailability(line: _Line) -> Unavailability:
    cid, day, period = _fields(line, SECTIONS[3][3], "unavailability")
    return Unavailability(cid, _number(day, "day", line.number), _number(period, "period", line.number))


def format_ctt(instance: Instance) -> str:
    out = [
        f"Name: {instance.name}",
        f"Courses: {len(instance.courses)}",
        f"Rooms: {len(instance.rooms)}",
        f"Days: {instance.days}",
        f"Periods_per_day: {instance.periods_per_day}",
        f"Curricula: {len(instance.curricula)}",
        f"Constraints: {len(instance.unavailability)}",
        "",
        "COURSES:",
        *(f"{c.id} {c.teacher} {c.lectures} {c.min_working_days} {c.students}" for c in instance.courses),
        "",
        "ROOMS:",
        *(f"{r.id} {r.capacity}" for r in instance.rooms),
        "",
        "CURRICULA:",
        *(" ".join((q.id, str(len(q.courses)), *q.courses)) for q in instance.curricula),
        "",
        "UNAVAILABILITY_CONSTRAINTS:",
        *(f"{u.course} {u.day} {u.period}" for u in instance.unavailability),
        "",
        END,
    ]
    return "\n".join(out) + "\n"


def parse_sol(text: str, instance: Instance) -> list[Assignment]:
    """Parse `.sol` lines. Unknown courses or rooms and days or periods out of range are
    not errors: the evaluator skips them as the official validator does. More lines than
    the instance has course-period pairs can only be junk, and are refused."""
    ix = instance.index
    limit = ix.n_courses * ix.n_periods
    out: list[Assignment] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(out) == limit:
            raise InstanceError(f"more solution lines than the {limit} course-period pairs of {instance.name}", n)
        if len(fields) != SOL_FIELDS:
            raise InstanceError(f"a solution line needs 4 fields (course room day period), found {len(fields)}", n)
        course, room, day, period = fields
        out.append(Assignment(course, room, _number(day, "day", n), _number(period, "period", n)))
    return out


def format_sol(timetable: Timetable) -> str:
    return "".join(f"{a.course} {a.room} {a.day} {a.period}\n" for a in timetable.assignments())
