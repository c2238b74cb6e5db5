"""bench/quality.py reads back its own per-run table (for an ablation that reuses runs) and
its journal (for a bench cut short), and sums the ablation per variant."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

from bench.calibration import kernel_speed, speeds_agree
from bench.quality import (FULL, LEAVE_OUT, VARIANTS, Run, ablation_table, ablation_verdict, difference_interval, journal_runs,
                           journal_writer, runs_from, runs_table, solver_digest)


def test_reads_back_the_runs_it_printed(tmp_path: Path) -> None:
    runs = [
        Run("comp01", 0, 0, 7, "231", "24", "7", 120.0, 902200.0, 101900.0),
        Run("comp02", 3, 0, 55, "450", "291", "55", 121.0, None, None),
    ]
    out = tmp_path / "out.md"
    out.write_text("Measured ...\n\n" + runs_table(runs, {}, {"comp01": (5, 5.0)}) + "\n")
    assert runs_from(out) == runs


def test_ablation_table_compares_each_variant_with_the_full_pipeline() -> None:
    runs = [Run(n, s, 0, base + 10 * i + s, "", "", "", 1.0, None, None, v, 0.8 + 0.01 * s)
            for i, v in enumerate(VARIANTS) for n, base in (("a", 100), ("b", 200)) for s in (0, 1)]
    table = ablation_table(runs, ["a", "b"], list(VARIANTS))
    full = next(line for line in table.splitlines() if line.startswith(f"| {FULL} "))
    assert full.endswith("| 100.5 | 200.5 | **301.0** | 300, 302 | 0.80–0.81 | – | – | – |")
    last = table.splitlines()[-1]  # the last variant: 30 more on each instance, 60 on the total
    # Each of the four instance-variants has variance 0.5 over 2 seeds (0.25 for its mean): a
    # difference of 60 +- t(4 df) 2.78 x sqrt(1.0).
    assert last.endswith("| 130.5 | 230.5 | **361.0** | 360, 362 | 0.80–0.81 | +19.9 % | +57.2 to +62.8 "
                         "| the stage earns its place |")


def test_an_ablation_of_some_stages_shows_those_in_the_order_asked() -> None:
    without_ga, _ = LEAVE_OUT["ga"]
    runs = [Run("a", s, 0, soft, "", "", "", 1.0, None, None, v, 0.8)
            for s in (0, 1, 2) for v, soft in ((FULL, 100), (without_ga, 110))]
    runs.append(Run("a", 3, 0, 999, "", "", "", 1.0, None, None, FULL))  # a seed the ablation lacks
    rows = ablation_table(runs, ["a"], [FULL, without_ga]).splitlines()
    assert rows[0].startswith("| variant (seeds 0,1,2) |")
    assert [row.split(" | ")[0] for row in rows[2:]] == [f"| {FULL}", f"| {without_ga}"]
    assert rows[-1].endswith("| **110.0** | 110, 110, 110 | 0.80 | +10.0 % | +10.0 to +10.0 | the stage earns its place |")


def test_the_ablation_judges_no_difference_the_machine_may_have_made() -> None:
    """Runs of a variant on a machine running the kernel at half speed are not compared; runs
    without a recorded speed keep their verdict, with the reason to doubt it."""
    without_ga, _ = LEAVE_OUT["ga"]

    def verdict(full_speed: float | None, variant_speed: float | None, outlier: float | None = None) -> str:
        runs = [Run("a", s, 0, base + s, "", "", "", 1.0, None, None, v, speed) for s in (0, 1, 2)
                for v, base, speed in ((FULL, 100, full_speed), (without_ga, 150, variant_speed))]
        if outlier is not None:  # one calibration of the variant's read while the other run started
            runs[1] = replace(runs[1], kernel_speed=outlier)
        return ablation_table(runs, ["a"], [FULL, without_ga]).splitlines()[-1].rsplit(" | ", 1)[1]

    assert verdict(0.80, 0.85) == "the stage earns its place |"  # within 10 %
    assert verdict(0.80, 0.45) == "not comparable: the kernel ran at 0.45 against 0.80 M moves/s (medians) |"
    assert verdict(None, 0.80) == "the stage earns its place; machine speed not recorded |"
    assert verdict(0.80, 0.80, outlier=0.51) == "the stage earns its place |", "one low reading moves no median"
    assert verdict(0.80, 0.45, outlier=0.80) == "not comparable: the kernel ran at 0.45 against 0.80 M moves/s (medians) |"


def test_the_machine_speed_is_a_fixed_workload_timed() -> None:
    assert 0 < kernel_speed() < 100  # million moves per second: a figure, not a count
    assert speeds_agree(1.0, 0.91) and not speeds_agree(1.0, 0.89)


def test_a_difference_within_the_seeds_spread_is_a_tie_and_a_saving_beyond_it_a_cost() -> None:
    full = {"a": [100, 120, 110]}
    assert ablation_verdict(difference_interval({"a": [105, 125, 95]}, full)) == "tie (within the seeds' spread)"
    assert ablation_verdict(difference_interval({"a": [60, 70, 65]}, full)) == "the stage costs"
    assert ablation_verdict(difference_interval({"a": [160, 170, 165]}, full)) == "the stage earns its place"
    assert difference_interval({"a": [100]}, full) is None  # one seed has no spread to judge by


def test_the_interval_sums_the_instances_spreads_whatever_seed_each_run_had() -> None:
    """Seed k of one instance and seed k of another are unrelated runs: pairing them into
    totals per seed must not matter, and each instance's spread adds to the whole."""
    full = {"a": [10, 12, 14], "b": [100, 104, 108]}
    variant = {"a": [20, 22, 24], "b": [108, 104, 100]}  # b's seeds in the other order
    low, high = difference_interval(variant, full)
    # Variances of the means 4/3 and 16/3 on each side, 40/3 in all; Welch-Satterthwaite:
    # (40/3)^2 / (2 (4/3)^2 / 2 + 2 (16/3)^2 / 2) = 5.9 degrees of freedom, so t(5) = 2.57.
    assert (low + high) / 2 == 10
    assert round(high - 10, 2) == round(2.57 * (40 / 3) ** 0.5, 2)
    assert difference_interval({"a": [20, 22, 24], "b": [100, 104, 108]}, full) == (low, high)
    assert difference_interval({"a": [5, 5], "b": [9, 9]}, {"a": [5, 5], "b": [9, 9]}) == (0, 0)


def test_a_journal_gives_back_only_the_runs_of_the_same_budget_and_solver_code(tmp_path: Path) -> None:
    journal = tmp_path / "runs.jsonl"
    first, second = (Run("comp01", s, 0, 7 + s, "231", "24", "7", 120.0, 9.0e5, 1.0e5) for s in (0, 1))
    budget = {"time": 120.0, "workers": 1, "solver": solver_digest()}
    for run, spent in ((first, budget), (second, {**budget, "time": 300.0})):
        future: Future[Run] = Future()
        future.set_result(run)
        journal_writer(journal, spent)(future)
    assert journal_runs(journal, budget) == [first]
    assert journal_runs(journal, {**budget, "solver": "other code"}) == []
    assert journal_runs(tmp_path / "none.jsonl", budget) == []
