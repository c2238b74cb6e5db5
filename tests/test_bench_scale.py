"""bench/scale.py: the figures it derives, and one real run of its smallest size."""

from __future__ import annotations

import re

import pytest

from bench import scale
from bench.scale import MONOLITHIC, PIPELINE, Run, Task


def _run(size: int, budget: float, unplaced: int = 0, wall: float | None = None, soft: int = 100,
         method: str = PIPELINE, seed: int = 1) -> Run:
    task = Task(method, str(size), size, seed, budget)
    return Run(task, lectures=size, first_complete=None if unplaced else 1.0, hard=unplaced, soft=soft,
               unplaced=unplaced, wall=budget if wall is None else wall, peak_mb=100.0)


def test_slope_is_the_exponent_of_a_power_law() -> None:
    assert scale.slope([(600, 3.6e5), (1700, 1700.0**2), (9000, 8.1e7)]) == pytest.approx(2.0)
    assert scale.slope([(600, 5.0), (9000, 5.0)]) == pytest.approx(0.0)


def test_slope_is_left_out_when_a_size_has_no_value() -> None:
    assert scale.slope([(600, 1.0), (1700, None)]) is None
    assert scale.slope([(600, 1.0), (1700, 0.0)]) is None  # no logarithm of 0
    assert scale.slope([(600, 1.0)]) is None


def test_verdict_counts_runs_per_target() -> None:
    runs = [_run(600, 60), _run(4300, 60, unplaced=3), _run(9000, 60, unplaced=50),  # 9000 at 60 s: not a target
            _run(9000, 300, wall=306.0)]
    assert scale.verdict(runs) == [
        "- every lecture placed on all runs ≤ 4,300 lectures at 60 s: no (1 of 2)",
        "- every lecture placed on all runs ≤ 9,000 lectures at 300 s: yes (1 of 1)",
        "- wall ≤ budget + 5 s on every run: no (3 of 4)",
    ]


def test_a_failed_run_fails_every_verdict() -> None:
    failed = Run(Task(PIPELINE, "600", 600, 1, 60.0), error="RuntimeError: boom")
    assert all(line.endswith("no (0 of 1)") for line in scale.verdict([failed])[::2])
    assert "failed: RuntimeError: boom" in scale.report([failed], "cmd", 1, False, "")


def test_comparison_needs_complete_timetables_for_a_soft_ratio() -> None:
    pipeline = [_run(600, 60, soft=50), _run(1700, 60, soft=80)]
    baseline = [_run(600, 60, soft=200, method=MONOLITHIC), _run(1700, 60, unplaced=1700, soft=900, method=MONOLITHIC)]
    rows = scale.comparison_table(pipeline, baseline, "size").splitlines()[2:]
    assert rows == [
        "| 600 | 60 | 1 | 50 | 200 | 0.25 | 0 | 0 | – (both 0) |",
        "| 1700 | 60 | 1 | 80 | 900 | – (incomplete) | 0 | 1700 | 0.00 |",
    ]


def test_smallest_size_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    scale.main(["--sizes", "600", "--seeds", "1", "--budgets", "3", "--no-baseline", "--jobs", "1"])
    out = capsys.readouterr().out
    assert out.startswith("## Scaling")
    assert "`./dev bench scale --sizes 600 --seeds 1 --budgets 3 --no-baseline --jobs 1`" in out
    # size, lectures, seed, first complete, hard, soft, unplaced, wall, wall − budget, peak MB
    row = re.compile(r"^\| 600 \| \d+ \| 1 \| (\d+\.\d|–) \| \d+ \| \d+ \| \d+ \| \d+\.\d \| [+-]\d+\.\d( ⚠)? \| \d+ \|$",
                     re.M)
    assert row.search(out), out
    assert "- every lecture placed on all runs ≤ 4,300 lectures at 60 s: not measured" in out
    assert "- every lecture placed on all runs ≤ 9,000 lectures at 300 s: not measured" in out
    assert re.search(r"^- wall ≤ budget \+ 5 s on every run: (yes|no) \(\d of 1\)$", out, re.M)
