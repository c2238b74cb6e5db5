"""Solution quality on ITC-2007 instances: the pipeline against plain monolithic CP-SAT.

Every result is re-checked with the project's evaluator. Prints a Markdown table.

    ./dev bench quality ../shared/ctt/instances/comp0*.ctt --time 120 --workers 1 --jobs 2
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from solver.ctt import parse_ctt
from solver.evaluate import Cost, evaluate
from solver.monolithic import solve_monolithic
from solver.pipeline import SolveOptions, solve
from solver.progress import CPSAT, GA, REFINEMENT


@dataclass(frozen=True)
class Run:
    instance: str
    seed: int
    hard: int
    soft: int
    after_cpsat: str
    after_ga: str
    after_refinement: str
    seconds: float
    mono_hard: int
    mono_soft: int
    mono_seconds: float


def _fmt(cost: Cost | None) -> str:
    return "–" if cost is None else (f"{cost.soft}" if cost.hard == 0 else f"{cost.soft} (hard {cost.hard})")


def run_one(path: str, time_limit: float, workers: int, seed: int) -> Run:
    instance = parse_ctt(Path(path).read_text(), source=path)
    started = time.monotonic()
    result = solve(instance, SolveOptions(time_limit=time_limit, seed=seed, workers=workers))
    seconds = time.monotonic() - started
    cost = evaluate(result.timetable)  # re-check: never trust the solver's own figure
    assert cost == result.cost, f"{path}: pipeline reported {result.cost}, evaluator says {cost}"

    started = time.monotonic()
    mono = evaluate(solve_monolithic(instance, time_limit=time_limit, workers=workers, seed=seed, should_stop=lambda: False))
    mono_seconds = time.monotonic() - started
    return Run(
        Path(path).stem,
        seed,
        cost.hard,
        cost.soft,
        _fmt(result.stage_costs.get(CPSAT)),
        _fmt(result.stage_costs.get(GA)),
        _fmt(result.stage_costs.get(REFINEMENT)),
        seconds,
        mono.hard,
        mono.soft,
        mono_seconds,
    )


def best_known(tsv: Path) -> dict[str, tuple[int, float]]:
    with tsv.open() as f:
        return {row["instance"]: (int(row["best_known"]), float(row["itc_winner_avg"])) for row in csv.DictReader(f, delimiter="\t")}


def table(runs: list[Run], known: dict[str, tuple[int, float]]) -> str:
    lines = [
        "| instance | seed | hard | soft | best known | gap % | after CP-SAT | after GA | after refinement | s | monolithic CP-SAT | mono s | soft ratio pipeline/mono |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        bk = known.get(r.instance, (None, None))[0]
        gap = f"{100 * (r.soft - bk) / bk:.1f}" if bk else "–"
        mono = f"{r.mono_soft}" if r.mono_hard == 0 else f"{r.mono_soft} (hard {r.mono_hard})"
        # An infeasible baseline has no comparable soft cost.
        ratio = f"{r.soft / r.mono_soft:.2f}" if r.mono_soft and r.mono_hard == 0 else "–"
        lines.append(
            f"| {r.instance} | {r.seed} | {r.hard} | {r.soft} | {bk if bk is not None else '–'} | {gap} | {r.after_cpsat} | "
            f"{r.after_ga} | {r.after_refinement} | {r.seconds:.0f} | {mono} | {r.mono_seconds:.0f} | {ratio} |"
        )
    lines.append(_totals(runs, known))
    return "\n".join(lines)


def _totals(runs: list[Run], known: dict[str, tuple[int, float]]) -> str:
    """Per instance the mean over seeds, then summed over instances."""
    names = sorted({r.instance for r in runs})
    soft = sum(statistics.mean(r.soft for r in runs if r.instance == n) for n in names)
    mono = sum(statistics.mean(r.mono_soft for r in runs if r.instance == n) for n in names)
    hard = sum(statistics.mean(r.hard for r in runs if r.instance == n) for n in names)
    mono_hard = sum(statistics.mean(r.mono_hard for r in runs if r.instance == n) for n in names)
    bk = sum(known[n][0] for n in names if n in known)
    winner = sum(known[n][1] for n in names if n in known)
    mono_cell = f"{mono:.0f}" if mono_hard == 0 else f"{mono:.0f} (hard {mono_hard:.0f})"
    ratio = f"{soft / mono:.2f}" if mono and mono_hard == 0 else "–"
    if not bk:
        return f"| **total** | | {hard:.0f} | **{soft:.0f}** | | | | | | | {mono_cell} | | {ratio} |"
    return (
        f"| **total** | | {hard:.0f} | **{soft:.0f}** | {bk} (ITC winner avg {winner:.1f}) | {100 * (soft - bk) / bk:.1f} | "
        f"| | | | {mono_cell} | | {ratio} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instances", nargs="+", help=".ctt files")
    parser.add_argument("--time", type=float, default=120.0, help="seconds per instance and method (default 120)")
    parser.add_argument("--workers", type=int, default=1, help="CP-SAT workers per solve (default 1)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default 0)")
    parser.add_argument("--jobs", type=int, default=1, help="instances solved at once (jobs × workers ≤ cores)")
    parser.add_argument(
        "--best-known",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "ctt" / "best_known.tsv",
    )
    args = parser.parse_args()
    known = best_known(args.best_known) if args.best_known.exists() else {}
    tasks = [(p, args.time, args.workers, s) for p in args.instances for s in args.seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(run_one, *zip(*tasks)))
    print(f"Measured {date.today()}: `{' '.join(['./dev bench quality', *sys.argv[1:]])}`\n")
    print(table(runs, known))


if __name__ == "__main__":
    main()
