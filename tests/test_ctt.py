"""`.ctt` and `.sol` text: round trips on the real instances, and one clear error per kind of damage."""

from __future__ import annotations

import pytest

from solver.check import check
from solver.ctt import format_ctt, format_sol, parse_ctt, parse_sol
from solver.errors import InstanceError
from solver.evaluate import evaluate, evaluate_assignments
from solver.timetable import Assignment, Timetable
from tests.conftest import CTT_DIR

COMP01 = (CTT_DIR / "instances" / "comp01.ctt").read_text()


def _edit(line: int, new: str | None) -> str:
    """comp01 with its 1-based `line` replaced by `new`, or deleted when `new` is None."""
    lines = COMP01.splitlines()
    if new is None:
        del lines[line - 1]
    else:
        lines[line - 1] = new
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", [f"comp0{i}" for i in range(1, 8)])
def test_round_trip_on_real_instances(name: str) -> None:
    text = (CTT_DIR / "instances" / f"{name}.ctt").read_text()
    instance = parse_ctt(text)
    again = parse_ctt(format_ctt(instance))
    assert again == instance
    assert format_ctt(again) == format_ctt(instance)
    # The figures the benchmark table gives for this instance.
    row = next(r.split("\t") for r in (CTT_DIR / "best_known.tsv").read_text().splitlines() if r.startswith(name))
    assert (instance.name, len(instance.courses), len(instance.rooms), instance.total_lectures) == (
        row[1], int(row[2]), int(row[3]), int(row[4]))


def test_reads_comp01_exactly() -> None:
    instance = parse_ctt(COMP01)
    assert instance.courses[0].id == "c0001" and instance.courses[0].students == 130
    assert instance.rooms[-1].id == "rS" and instance.rooms[-1].capacity == 30
    assert instance.curricula[0].courses == ("c0001", "c0002", "c0004", "c0005")
    assert len(instance.unavailability) == 53 and instance.unavailability[-1].period == 2


MALFORMED = [
    # (text, line, phrase)
    (_edit(7, None), 8, "header field Constraints: is missing"),
    (_edit(3, "Roooms: 6"), 3, "expected a header field"),
    (_edit(2, "Courses: 31"), 41, "section COURSES: has 30 rows but the header says Courses: 31"),
    (_edit(3, "Rooms: 5"), 47, "one room row more than the header's Rooms: 5"),
    (_edit(49, "ROOMS:"), 49, "expected section CURRICULA:, found 'ROOMS:'"),
    ("\n".join(COMP01.splitlines()[:47]), 47, "section CURRICULA: is missing"),
    (_edit(120, None), 119, "END. is missing"),
    (_edit(119, "c0001 0 0"), 119, "one unavailability row more than the header's Constraints: 53"),
    (COMP01 + "extra\n", 121, "unexpected text after END."),
    (_edit(12, "c0004 t002 7 3"), 12, "each course row needs 5 fields"),
    (_edit(66, "c0001 4 0 1"), 66, "each unavailability row needs 3 fields"),
    (_edit(43, "rC lots"), 43, "capacity must be a whole number, found 'lots'"),
    (_edit(4, "Days: five"), 4, "Days must be a whole number"),
    (_edit(10, "c0001 t000 6 4 -130"), 10, "students of course c0001 must not be negative"),
    (_edit(11, "c0002 t001 0 4 75"), 11, "lectures of course c0002 must be at least 1"),
    (_edit(44, "rE -1"), 44, "capacity of room rE must not be negative"),
    (_edit(11, "c0001 t001 6 4 75"), 11, "duplicate course id c0001"),
    (_edit(43, "rB 100"), 43, "duplicate room id rB"),
    (_edit(51, "q000 4 c0014 c0015 c0016 c0017"), 51, "duplicate curriculum id q000"),
    (_edit(50, "q000 4 c0001 c0002 c0004 c0999"), 50, "curriculum q000 names unknown course c0999"),
    (_edit(50, "q000 4 c0001 c0002 c0004 c0001"), 50, "curriculum q000 lists course c0001 twice"),
    (_edit(50, "q000 5 c0001 c0002 c0004 c0005"), 50, "curriculum q000 says 5 courses but lists 4"),
    (_edit(66, "c0999 4 0"), 66, "unavailability names unknown course c0999"),
    (_edit(66, "c0001 5 0"), 66, "day 5 of course c0001 is outside the week"),
    (_edit(66, "c0001 4 6"), 66, "period 6 of course c0001 is outside the day"),
    (_edit(10, "c0001 t000 6 -1 130"), 10, "min_working_days of course c0001 must not be negative"),
    (_edit(2, "Courses: 6000"), 2, "more than this service accepts (at most 5000)"),
    (_edit(5, "Periods_per_day: 25"), 5, "periods per day is 25, more than this service accepts (at most 24)"),
    (_edit(10, "c0001 t000 99999 4 130"), 11, "with course c0002 the lectures add up to 100005, more than"),
]


# Odd data the official validator accepts and prices: read, then explained by the check.
ACCEPTED = [
    # (text, the warnings check gives for it)
    (_edit(44, "rE 0"), ["Room rE has capacity 0: every lecture placed there costs its students."]),
    (_edit(11, "c0002 t001 6 10 75"),
     ["Course c0002 asks for 10 working days but the week has 5; at least 5 × 5 = 25 cost."]),
    (_edit(10, "c0001 t000 6 4 0"), []),
]


@pytest.mark.parametrize(("text", "warnings"), ACCEPTED, ids=["capacity 0", "10 working days", "0 students"])
def test_odd_data_is_accepted_with_a_warning(text: str, warnings: list[str]) -> None:
    instance = parse_ctt(text)
    assert parse_ctt(format_ctt(instance)) == instance
    assert [(f.level, f.message) for f in check(instance)] == [("warning", w) for w in warnings]


@pytest.mark.parametrize(("text", "line", "phrase"), MALFORMED, ids=[m[2][:40] for m in MALFORMED])
def test_malformed_input_names_line_and_problem(text: str, line: int, phrase: str) -> None:
    with pytest.raises(InstanceError) as caught:
        parse_ctt(text)
    assert caught.value.line == line
    assert phrase in caught.value.message
    assert str(caught.value).startswith(f"line {line}: ")
    assert "\n" not in str(caught.value)


def test_error_string_is_the_contract_form() -> None:
    with pytest.raises(InstanceError) as caught:
        parse_ctt(_edit(50, "q000 4 c0001 c0002 c0004 c0999"))
    assert str(caught.value) == "line 50: curriculum q000 names unknown course c0999"
    assert caught.value.field == "curricula[0].courses[3]"


def test_long_junk_is_shown_short() -> None:
    with pytest.raises(InstanceError) as caught:
        parse_ctt(_edit(43, "rC " + "9x" * 500))
    assert len(str(caught.value)) < 120


def test_empty_text_asks_for_the_header() -> None:
    with pytest.raises(InstanceError, match="header field Name: is missing"):
        parse_ctt("")


def test_sol_round_trip_agrees_with_the_validator() -> None:
    instance = parse_ctt(COMP01)
    text = (CTT_DIR / "validator-cases" / "comp01-good.sol").read_text()
    timetable = Timetable.from_assignments(instance, parse_sol(text, instance))
    assert not timetable.unplaced

    again = parse_sol(format_sol(timetable), instance)

    assert sorted(again, key=repr) == sorted(parse_sol(text, instance), key=repr)
    # comp01-good.expected: RoomCapacity 4, RoomStability 1, no hard violation.
    assert evaluate_assignments(instance, again) == evaluate(timetable)
    assert (evaluate(timetable).hard, evaluate(timetable).soft) == (0, 5)


def test_sol_skips_unknown_names_like_the_validator(tiny_instance) -> None:
    assignments = parse_sol("c1 rA 0 0\nc9 rA 0 1\nc1 rZ 1 0\nc1 rA 7 0\n\n", tiny_instance)
    assert assignments[1] == Assignment("c9", "rA", 0, 1)
    cost = evaluate_assignments(tiny_instance, assignments)
    # Only the first line counts: c1 lacks one lecture, c2 both, c3 its one.
    assert cost.lectures == 1 + 2 + 1


@pytest.mark.parametrize(("text", "line", "phrase"), [
    ("c1 rA 0 0\nc1 rA 0\n", 2, "needs 4 fields"),
    ("c1 rA 0 0\n\nc1 rA one 1\n", 3, "day must be a whole number"),
    ("c1 rA 0 0.5\n", 1, "period must be a whole number"),
])
def test_malformed_sol_line(tiny_instance, text: str, line: int, phrase: str) -> None:
    with pytest.raises(InstanceError) as caught:
        parse_sol(text, tiny_instance)
    assert caught.value.line == line and phrase in caught.value.message


def test_sol_refuses_more_lines_than_course_periods(tiny_instance) -> None:
    with pytest.raises(InstanceError, match="more solution lines than the 12 course-period pairs") as caught:
        parse_sol("c1 rA 0 0\n" * 13, tiny_instance)
    assert caught.value.line == 13


def test_windows_line_ends_and_byte_order_mark_are_accepted() -> None:
    assert parse_ctt("\ufeff" + COMP01.replace("\n", "\r\n")) == parse_ctt(COMP01)


def test_empty_name_falls_back_to_the_source() -> None:
    assert parse_ctt(_edit(1, "Name:"), "upload.ctt").name == "upload.ctt"
