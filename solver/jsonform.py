"""JSON forms of an instance and of a timetable; instance errors name the field path."""

from __future__ import annotations

from typing import Any

from solver.errors import InstanceError, counted, named, shown
from solver.evaluate import Cost
from solver.model import Course, Curriculum, Instance, Room, Unavailability
from solver.timetable import UNPLACED, Timetable
from solver.validate import Sizes, check_contents, check_sizes, json_path, locate_by_path

INSTANCE_KEYS = ("name", "days", "periods_per_day", "courses", "rooms", "curricula", "unavailability")
COURSE_KEYS = ("id", "teacher", "lectures", "min_working_days", "students")
ROOM_KEYS = ("id", "capacity")
CURRICULUM_KEYS = ("id", "courses")
UNAVAILABILITY_KEYS = ("course", "day", "period")
LECTURE_KEYS = ("course", "room", "day", "period")


def instance_to_json(instance: Instance) -> dict[str, Any]:
    return {
        "name": instance.name,
        "days": instance.days,
        "periods_per_day": instance.periods_per_day,
        "courses": [{k: getattr(c, k) for k in COURSE_KEYS} for c in instance.courses],
        "rooms": [{k: getattr(r, k) for k in ROOM_KEYS} for r in instance.rooms],
        "curricula": [{"id": q.id, "courses": list(q.courses)} for q in instance.curricula],
        "unavailability": [{k: getattr(u, k) for k in UNAVAILABILITY_KEYS} for u in instance.unavailability],
    }


def instance_from_json(data: object) -> Instance:
    top = _object(data, "instance", INSTANCE_KEYS)
    lists = {key: _list(top[key], key) for key in ("courses", "rooms", "curricula", "unavailability")}
    days, per_day = _int(top["days"], "days"), _int(top["periods_per_day"], "periods_per_day")
    check_sizes(Sizes(days, per_day, *(len(v) for v in lists.values())), locate_by_path)
    instance = Instance(
        name=_str(top["name"], "name"),
        days=days,
        periods_per_day=per_day,
        courses=tuple(_course(v, json_path("courses", i)) for i, v in enumerate(lists["courses"])),
        rooms=tuple(_room(v, json_path("rooms", i)) for i, v in enumerate(lists["rooms"])),
        curricula=tuple(_curriculum(v, json_path("curricula", i)) for i, v in enumerate(lists["curricula"])),
        unavailability=tuple(
            _unavailability(v, json_path("unavailability", i)) for i, v in enumerate(lists["unavailability"])),
    )
    check_contents(instance, locate_by_path)
    return instance


def _course(data: object, path: str) -> Course:
    d = _object(data, path, COURSE_KEYS)
    return Course(
        _str(d["id"], f"{path}.id"),
        _str(d["teacher"], f"{path}.teacher"),
        _int(d["lectures"], f"{path}.lectures"),
        _int(d["min_working_days"], f"{path}.min_working_days"),
        _int(d["students"], f"{path}.students"),
    )


def _room(data: object, path: str) -> Room:
    d = _object(data, path, ROOM_KEYS)
    return Room(_str(d["id"], f"{path}.id"), _int(d["capacity"], f"{path}.capacity"))


def _curriculum(data: object, path: str) -> Curriculum:
    d = _object(data, path, CURRICULUM_KEYS)
    members = _list(d["courses"], f"{path}.courses")
    return Curriculum(_str(d["id"], f"{path}.id"),
                      tuple(_str(m, f"{path}.courses[{j}]") for j, m in enumerate(members)))


def _unavailability(data: object, path: str) -> Unavailability:
    d = _object(data, path, UNAVAILABILITY_KEYS)
    return Unavailability(_str(d["course"], f"{path}.course"), _int(d["day"], f"{path}.day"),
                          _int(d["period"], f"{path}.period"))


def timetable_to_json(timetable: Timetable, cost: Cost) -> dict[str, Any]:
    """The contract's timetable form: cost, placed lectures with their teacher and
    curricula (so a page can filter without the instance), unplaced lectures."""
    ix = timetable.instance.index
    lectures, unplaced = [], []
    for lecture, (period, room) in enumerate(zip(timetable.period, timetable.room)):
        c = int(ix.lecture_course[lecture])
        if period == UNPLACED:
            unplaced.append({"course": ix.course_ids[c]})
            continue
        day, slot = divmod(period, ix.periods_per_day)
        lectures.append({
            "course": ix.course_ids[c],
            "room": ix.room_ids[room],
            "day": day,
            "period": slot,
            "teacher": ix.teacher_ids[ix.teacher[c]],
            "curricula": [ix.curriculum_ids[q] for q in ix.curricula_of[c]],
        })
    return {"cost": cost.as_dict(), "lectures": lectures, "unplaced": unplaced}


def timetable_from_json(data: object, instance: Instance) -> Timetable:
    """Read the `lectures` of `timetable_to_json` (other keys are ignored); lectures of a
    course without an entry stay unplaced. Unlike `.sol` text, which comes from other
    tools, this form is ours, so unknown names and out-of-range values are errors."""
    top = _dict(data, "timetable")
    ix = instance.index
    period, room = [UNPLACED] * ix.n_lectures, [UNPLACED] * ix.n_lectures
    next_free = ix.first_lecture[:-1].tolist()
    for i, entry in enumerate(_list(_field(top, "lectures", "timetable"), "lectures")):
        path = json_path("lectures", i)
        values = {k: _field(_dict(entry, path), k, path) for k in LECTURE_KEYS}
        c = _known(ix.course_pos, _str(values["course"], f"{path}.course"), f"{path}.course", "course")
        r = _known(ix.room_pos, _str(values["room"], f"{path}.room"), f"{path}.room", "room")
        day = _bounded(_int(values["day"], f"{path}.day"), ix.days, f"{path}.day")
        slot = _bounded(_int(values["period"], f"{path}.period"), ix.periods_per_day, f"{path}.period")
        if next_free[c] == ix.first_lecture[c + 1]:
            owned = counted(int(ix.lectures[c]), "lecture")
            raise InstanceError(f"course {ix.course_ids[c]} has only {owned}", field=path)
        period[next_free[c]], room[next_free[c]] = day * ix.periods_per_day + slot, r
        next_free[c] += 1
    return Timetable(instance, tuple(period), tuple(room))


def _known(positions: dict[str, int], name: str, path: str, kind: str) -> int:
    if name not in positions:
        raise InstanceError(f"unknown {kind} {named(name)}", field=path)
    return positions[name]


def _bounded(value: int, limit: int, path: str) -> int:
    if not 0 <= value < limit:
        raise InstanceError(f"must be between 0 and {limit - 1}, found {value}", field=path)
    return value


def _field(d: dict, key: str, path: str) -> object:
    if key not in d:
        raise InstanceError(f"missing field {key!r}", field=path)
    return d[key]


def _object(data: object, path: str, keys: tuple[str, ...]) -> dict:
    """A JSON object with exactly `keys`: unknown keys are refused so a typo is not silently ignored."""
    _dict(data, path)
    for key in keys:
        _field(data, key, path)
    extra = sorted(str(k) for k in data if k not in keys)
    if extra:
        raise InstanceError(f"unknown field {shown(extra[0])} (expected {', '.join(keys)})", field=path)
    return data


def _dict(value: object, path: str) -> dict:
    return _typed(value, path, dict, "an object")


def _list(value: object, path: str) -> list:
    return _typed(value, path, list, "a list")


def _int(value: object, path: str) -> int:
    return _typed(value, path, int, "an integer")


def _str(value: object, path: str) -> str:
    return _typed(value, path, str, "a string")


def _typed(value: Any, path: str, kind: type, expected: str) -> Any:
    # bool is an int subclass in Python, but `true` is not a number in JSON.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InstanceError(f"must be {expected}, found {_kind(value)}", field=path)
    return value


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    kind = names.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)
    return f"{kind} {shown(value)}" if isinstance(value, (str, int, float)) else kind
