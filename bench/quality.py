"""Solution quality on ITC-2007 instances: the pipeline, over several seeds, against plain monolithic CP-SAT.

Every result is re-checked with the project's evaluator. Prints Markdown tables: one row
per run, then per instance the mean, min and max over the seeds (and the same for the
total over instances, taken per seed), with the refinement's moves proposed and accepted
per second (proposed: operator calls, including those dropped as infeasible before their
cost change is computed; see solver.refine.MoveStats). Plain CP-SAT runs once per instance, with seed 0: its figures do not move
with the pipeline's seeds (`--no-mono` leaves it out).

The ablation (`--ablate 0-2`) runs the pipeline again without each search stage, the
stage's time given to the next one, and prints the mean total of each variant
(`--leave-out ga,refinement` runs only those stages' variants, in that order);
`--runs-from OUT.md` takes the full pipeline's runs from an earlier output instead of
solving them again. `--journal runs.jsonl` appends every finished run to that file as it
ends, and a later run of the bench with the same budget and solver code solves only what
it lacks: long measurements survive being cut off and can be gathered over several sittings.
Machines differ between sittings, so each run first times a fixed workload of the search
kernel (bench.calibration) and records the machine's speed with its result; the ablation
gives no verdict on variants whose runs the machine ran at speeds more than 10 % apart.

    ./dev bench quality ../shared/ctt/instances/comp0*.ctt --time 120 --workers 1 --jobs 2 --seeds 0-4 --ablate 0-2
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import statistics
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Callable

from bench.calibration import kernel_speed, speeds_agree
from solver.ctt import parse_ctt
from solver.evaluate import Cost, evaluate
from solver.model import Instance
from solver.monolithic import solve_monolithic
from solver.pipeline import SolveOptions, solve
from solver.progress import CPSAT, GA, REFINEMENT

MONO_SEED = 0


FULL = "full pipeline"
# The ablation's variants, by the word `--leave-out` names each with: the variant's name and
# the stage it leaves out (its time goes to the next stage). The ablation runs in the order given.
LEAVE_OUT: dict[str, tuple[str, str]] = {
    "cpsat": ("without clustering + CP-SAT", CPSAT),
    "ga": ("without GA", GA),
    "refinement": ("without refinement", REFINEMENT),
}
VARIANTS: dict[str, frozenset[str]] = {FULL: frozenset()} | {name: frozenset({stage}) for name, stage in LEAVE_OUT.values()}


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
    proposed_per_second: float | None  # the refinement's moves; None when it did not run
    accepted_per_second: float | None
    variant: str = FULL
    # The machine's kernel speed just before the run (bench.calibration); None in runs
    # journaled before it was recorded.
    kernel_speed: float | None = None


@dataclass(frozen=True)
class Mono:
    instance: str
    hard: int
    soft: int
    seconds: float


def _fmt(cost: Cost | None) -> str:
    return "–" if cost is None else (f"{cost.soft}" if cost.hard == 0 else f"{cost.soft} (hard {cost.hard})")


def _rate(per_second: float | None) -> str:
    if per_second is None:
        return "–"
    return f"{per_second / 1000:.1f}k" if per_second >= 1000 else f"{per_second:.0f}"


def _load(path: str) -> Instance:
    return parse_ctt(Path(path).read_text(), source=path)


def run_pipeline(path: str, time_limit: float, workers: int, seed: int, variant: str = FULL) -> Run:
    instance = _load(path)
    speed = kernel_speed()
    started = time.monotonic()
    options = SolveOptions(time_limit=time_limit, seed=seed, workers=workers, skip=VARIANTS[variant])
    result = solve(instance, options)
    seconds = time.monotonic() - started
    cost = evaluate(result.timetable)  # re-check: never trust the solver's own figure
    assert cost == result.cost, f"{path}: pipeline reported {result.cost}, evaluator says {cost}"
    moves = result.moves
    return Run(
        Path(path).stem,
        seed,
        cost.hard,
        cost.soft,
        _fmt(result.stage_costs.get(CPSAT)),
        _fmt(result.stage_costs.get(GA)),
        _fmt(result.stage_costs.get(REFINEMENT)),
        seconds,
        moves.proposed_per_second if moves and moves.seconds > 0 else None,
        moves.accepted_per_second if moves and moves.seconds > 0 else None,
        variant,
        speed,
    )


def run_mono(path: str, time_limit: float, workers: int) -> Mono:
    instance = _load(path)
    started = time.monotonic()
    cost = evaluate(solve_monolithic(instance, time_limit=time_limit, workers=workers, seed=MONO_SEED,
                                     should_stop=lambda: False))
    return Mono(Path(path).stem, cost.hard, cost.soft, time.monotonic() - started)


def parse_seeds(words: list[str]) -> list[int]:
    """`0-4`, `0,2,5` or a mix like `0-2,7`: the seeds in order, each once."""
    seeds: list[int] = []
    for word in words:
        for part in filter(None, word.split(",")):
            low, _, high = part.partition("-")
            span = range(int(low), int(high) + 1) if high else [int(low)]
            if not span:
                raise argparse.ArgumentTypeError(f"empty seed range {part!r}")
            seeds.extend(s for s in span if s not in seeds)
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds")
    return seeds


def best_known(tsv: Path) -> dict[str, tuple[int, float]]:
    with tsv.open() as f:
        return {row["instance"]: (int(row["best_known"]), float(row["itc_winner_avg"])) for row in csv.DictReader(f, delimiter="\t")}


def _mono_cells(mono: Mono | None) -> tuple[str, str]:
    if mono is None:
        return "–", "–"
    return (f"{mono.soft}" if mono.hard == 0 else f"{mono.soft} (hard {mono.hard})"), f"{mono.seconds:.0f}"


def _ratio(soft: float, mono: Mono | None) -> str:
    # An infeasible baseline has no comparable soft cost.
    return f"{soft / mono.soft:.2f}" if mono is not None and mono.soft and mono.hard == 0 else "–"


def _gap(soft: float, bk: int | None) -> str:
    return f"{100 * (soft - bk) / bk:.1f}" if bk else "–"


def runs_table(runs: list[Run], monos: dict[str, Mono], known: dict[str, tuple[int, float]]) -> str:
    lines = [
        "| instance | seed | hard | soft | best known | gap % | after CP-SAT | after GA | after refinement | s "
        "| moves/s proposed | moves/s accepted | monolithic CP-SAT (seed 0) | mono s | soft ratio pipeline/mono |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        bk = known.get(r.instance, (None, None))[0]
        mono = monos.get(r.instance)
        mono_cell, mono_s = _mono_cells(mono)
        lines.append(
            f"| {r.instance} | {r.seed} | {r.hard} | {r.soft} | {bk if bk is not None else '–'} | {_gap(r.soft, bk)} "
            f"| {r.after_cpsat} | {r.after_ga} | {r.after_refinement} | {r.seconds:.0f} "
            f"| {_rate(r.proposed_per_second)} | {_rate(r.accepted_per_second)} | {mono_cell} | {mono_s} | {_ratio(r.soft, mono)} |"
        )
    return "\n".join(lines)


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.mean(present) if present else None


def summary_table(runs: list[Run], monos: dict[str, Mono], known: dict[str, tuple[int, float]]) -> str:
    """Per instance the mean, min and max soft cost over its seeds; the total row sums
    the instances per seed (seeds every instance ran), then takes mean, min and max."""
    lines = [
        "| instance | seeds | max hard | mean soft | min | max | best known | ITC winner avg | gap % (mean) "
        "| moves/s proposed | moves/s accepted | monolithic CP-SAT (seed 0) | mono s | soft ratio mean/mono |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = sorted({r.instance for r in runs})
    for n in names:
        mine = [r for r in runs if r.instance == n]
        soft = [r.soft for r in mine]
        bk, winner = known.get(n, (None, None))
        mono_cell, mono_s = _mono_cells(monos.get(n))
        lines.append(
            f"| {n} | {len(mine)} | {max(r.hard for r in mine)} | {statistics.mean(soft):.1f} | {min(soft)} | {max(soft)} "
            f"| {bk if bk is not None else '–'} | {winner if winner is not None else '–'} | {_gap(statistics.mean(soft), bk)} "
            f"| {_rate(_mean([r.proposed_per_second for r in mine]))} | {_rate(_mean([r.accepted_per_second for r in mine]))} "
            f"| {mono_cell} | {mono_s} | {_ratio(statistics.mean(soft), monos.get(n))} |"
        )
    lines.append(_total(runs, monos, known, names))
    return "\n".join(lines)


def _total(runs: list[Run], monos: dict[str, Mono], known: dict[str, tuple[int, float]], names: list[str]) -> str:
    seeds = sorted(set.intersection(*({r.seed for r in runs if r.instance == n} for n in names)))
    totals = [sum(r.soft for r in runs if r.seed == s) for s in seeds]
    hard = max(r.hard for r in runs)
    bk = sum(known[n][0] for n in names if n in known) if all(n in known for n in names) else None
    winner = sum(known[n][1] for n in names if n in known) if bk else None
    mono_all = [monos[n] for n in names if n in monos]
    mono = Mono("total", sum(m.hard for m in mono_all), sum(m.soft for m in mono_all), 0.0) if len(mono_all) == len(names) else None
    mono_cell, _ = _mono_cells(mono)
    if not totals:
        return f"| **total** | 0 | {hard} | – | – | – | | | | | | {mono_cell} | | – |"
    mean = statistics.mean(totals)
    return (
        f"| **total** | {len(seeds)} | {hard} | **{mean:.1f}** | {min(totals)} | {max(totals)} "
        f"| {bk if bk is not None else '–'} | {f'{winner:.1f}' if winner is not None else '–'} | {_gap(mean, bk)} "
        f"| | | {mono_cell} | | {_ratio(mean, mono)} |"
    )


# Student's t at 97.5 % by degrees of freedom (a fractional count takes the row below it;
# beyond the table, the normal's 1.96), for the ablation's 95 % interval of a difference.
T_975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23,
         12: 2.18, 14: 2.14, 16: 2.12, 18: 2.10, 20: 2.09, 25: 2.06, 30: 2.04, 40: 2.02, 60: 2.00, 120: 1.98}


def _t975(df: float) -> float:
    return T_975[max(k for k in T_975 if k <= df)] if df < 2 * max(T_975) else 1.96


def difference_interval(variant: dict[str, list[int]], full: dict[str, list[int]]) -> tuple[float, float] | None:
    """The 95 % interval of the variant's mean total minus the full pipeline's, from each
    one's soft costs per instance over the seeds; None if some instance has fewer than two.

    Every run is independent (seed 3 of one instance has nothing to do with seed 3 of
    another), so the variance of a mean total is the sum of its instances' variances of the
    mean, with Welch-Satterthwaite's degrees of freedom. (Totals per seed would pair runs at
    random and judge the spread by a handful of sums instead of by every run.)"""
    samples = [*variant.values(), *full.values()]
    if any(len(costs) < 2 for costs in samples):
        return None
    parts = [(statistics.variance(costs) / len(costs), len(costs) - 1) for costs in samples]
    variance = sum(v for v, _ in parts)
    d = sum(map(statistics.mean, variant.values())) - sum(map(statistics.mean, full.values()))
    if variance == 0:
        return d, d
    df = variance ** 2 / sum(v ** 2 / k for v, k in parts)
    half = _t975(df) * variance ** 0.5
    return d - half, d + half


def ablation_verdict(interval: tuple[float, float] | None) -> str:
    """What leaving the stage out did: only an interval clear of 0 is an effect."""
    if interval is None:
        return "–"
    low, high = interval
    return "the stage earns its place" if low > 0 else "the stage costs" if high < 0 else "tie (within the seeds' spread)"


def _recorded_speeds(runs: list[Run]) -> list[float] | None:
    """The kernel speeds of `runs`; None if any run (or all) lacks one."""
    speeds = [r.kernel_speed for r in runs if r.kernel_speed is not None]
    return speeds if speeds and len(speeds) == len(runs) else None


def speed_range(runs: list[Run]) -> tuple[float, float] | None:
    """The slowest and fastest kernel speed the machine had over `runs`."""
    speeds = _recorded_speeds(runs)
    return None if speeds is None else (min(speeds), max(speeds))


def _speed_cell(speeds: tuple[float, float] | None) -> str:
    if speeds is None:
        return "–"
    low, high = speeds
    return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}–{high:.2f}"


def median_speed(runs: list[Run]) -> float | None:
    """The kernel speed typical of `runs`."""
    speeds = _recorded_speeds(runs)
    return None if speeds is None else statistics.median(speeds)


def compared_verdict(interval: tuple[float, float] | None, runs: list[Run], full_runs: list[Run]) -> str:
    """The ablation's verdict, unless the machine ran the variant's runs at a different speed
    from the full pipeline's: then the difference may be the machine's, not the stage's. The
    medians are compared, not the ranges: two runs at a time, a calibration now and then reads
    low while the other run starts (0.51-0.96 in one sitting), where a slower machine moves them all."""
    typical, full_typical = median_speed(runs), median_speed(full_runs)
    if typical is None or full_typical is None:
        return f"{ablation_verdict(interval)}; machine speed not recorded"
    if not speeds_agree(typical, full_typical):
        return f"not comparable: the kernel ran at {typical:.2f} against {full_typical:.2f} M moves/s (medians)"
    return ablation_verdict(interval)


def ablation_table(runs: list[Run], names: list[str], variants: list[str]) -> str:
    """Per variant, the mean soft cost per instance and of the total over the seeds every
    variant ran, the totals per seed, the machine's kernel speed over its runs, and the change
    against the full pipeline with its 95 % interval: a stage earns its place when leaving it
    out costs more than the seeds' spread, on a machine running as fast for both."""
    seeds = sorted(set.intersection(*({r.seed for r in runs if r.variant == v} for v in variants)))
    compared = {v: [r for r in runs if r.variant == v and r.instance in names and r.seed in seeds] for v in variants}
    softs = {v: {n: [r.soft for r in compared[v] if r.instance == n] for n in names} for v in variants}
    mean = {(v, n): statistics.mean(softs[v][n]) for v in variants for n in names}
    totals = {v: [sum(r.soft for r in compared[v] if r.seed == s) for s in seeds] for v in variants}
    speeds = {v: speed_range(compared[v]) for v in variants}
    lines = [
        f"| variant (seeds {','.join(map(str, seeds))}) | " + " | ".join(names)
        + " | **mean total** | totals per seed | kernel M moves/s | vs full | difference, 95 % interval | verdict |",
        "|---|" + "---|" * (len(names) + 6),
    ]
    full_total = sum(mean[FULL, n] for n in names)
    for v in variants:
        total = sum(mean[v, n] for n in names)
        cells = [f"{mean[v, n]:.1f}" for n in names] + [f"**{total:.1f}**", ", ".join(map(str, totals[v])),
                                                         _speed_cell(speeds[v])]
        if v == FULL:
            cells += ["–", "–", "–"]
        else:
            interval = difference_interval(softs[v], softs[FULL])
            cells += [f"{100 * (total - full_total) / full_total:+.1f} %",
                      "–" if interval is None else f"{interval[0]:+.1f} to {interval[1]:+.1f}",
                      compared_verdict(interval, compared[v], compared[FULL])]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _unrate(cell: str) -> float | None:
    if cell == "–":
        return None
    return float(cell[:-1]) * 1000 if cell.endswith("k") else float(cell)


def runs_from(markdown: Path) -> list[Run]:
    """The full pipeline's runs from the per-run table of an earlier output of this bench
    (same code and budget), so that an ablation does not solve them again."""
    runs = []
    for line in markdown.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 15 or not cells[1].isdigit():
            continue  # not a row of the per-run table
        name, seed, hard, soft, _, _, cpsat, ga, refinement, seconds, proposed, accepted = cells[:12]
        runs.append(Run(name, int(seed), int(hard), int(soft), cpsat, ga, refinement, float(seconds),
                        _unrate(proposed), _unrate(accepted)))
    return runs


def solver_digest() -> str:
    """A fingerprint of the solver's code: a journal's runs count only for the code that made them."""
    digest = hashlib.sha256()
    for source in sorted((Path(__file__).resolve().parents[1] / "solver").glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    return digest.hexdigest()[:16]


def journal_runs(path: Path | None, budget: dict[str, object]) -> list[Run]:
    """The runs a journal holds for this budget and solver code: a bench cut short (a
    session's end, a reboot) resumes where it stopped instead of solving them again."""
    if path is None or not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if all(entry.pop(key, None) == value for key, value in budget.items()):
            runs.append(Run(**entry))
    return runs


def journal_writer(path: Path | None, budget: dict[str, object]) -> Callable[[Future[Run]], None]:
    """A done-callback that appends each finished run to the journal, one JSON line."""

    def write(future: Future[Run]) -> None:
        if path is not None and future.exception() is None:
            with path.open("a") as f:
                f.write(json.dumps({**asdict(future.result()), **budget}) + "\n")

    return write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instances", nargs="+", help=".ctt files")
    parser.add_argument("--time", type=float, default=120.0, help="seconds per instance and method (default 120)")
    parser.add_argument("--workers", type=int, default=1, help="CP-SAT workers per solve (default 1)")
    # One word (`0-4`, `0,2,5`): a list of words would swallow the instance paths after it.
    parser.add_argument("--seeds", default="0", help="pipeline seeds: 0-4, 0,2,5 or a mix like 0-2,7 (default 0)")
    parser.add_argument("--no-mono", action="store_true", help="leave out plain CP-SAT (its figures do not move)")
    parser.add_argument("--jobs", type=int, default=1, help="solves at once (jobs × workers ≤ cores)")
    parser.add_argument("--ablate", default="", metavar="SEEDS",
                        help="also run the pipeline without each search stage, with these seeds (e.g. 0-2)")
    parser.add_argument("--leave-out", default=",".join(LEAVE_OUT), metavar="STAGES",
                        help="the ablation's stages, run in this order (default cpsat,ga,refinement)")
    parser.add_argument("--runs-from", type=Path, metavar="MARKDOWN",
                        help="take the full pipeline's runs from this earlier output of the bench instead of solving them")
    parser.add_argument("--journal", type=Path, metavar="JSONL",
                        help="append each finished run here, and solve none this file already holds (same budget and solver code)")
    parser.add_argument(
        "--best-known",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "ctt" / "best_known.tsv",
    )
    args = parser.parse_args()
    try:
        seeds = parse_seeds([args.seeds])
        ablated = parse_seeds([args.ablate]) if args.ablate else []
        variants = [FULL] + [LEAVE_OUT[word][0] for word in args.leave_out.split(",")]
    except (ValueError, argparse.ArgumentTypeError) as e:
        parser.error(f"--seeds/--ablate: {e}")
    except KeyError as e:
        parser.error(f"--leave-out: {e.args[0]!r} is not one of {', '.join(LEAVE_OUT)}")
    known = best_known(args.best_known) if args.best_known.exists() else {}
    budget = {"time": args.time, "workers": args.workers, "solver": solver_digest()}
    earlier = (runs_from(args.runs_from) if args.runs_from else []) + journal_runs(args.journal, budget)
    done = {(r.instance, r.seed, r.variant) for r in earlier}
    wanted = [(p, s, FULL) for p in args.instances for s in seeds]
    wanted += [(p, s, v) for v in variants for p in args.instances for s in ablated if v != FULL or s not in seeds]
    record = journal_writer(args.journal, budget)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        pending = [
            pool.submit(run_pipeline, p, args.time, args.workers, s, v)
            for p, s, v in wanted if (Path(p).stem, s, v) not in done
        ]
        for future in pending:
            future.add_done_callback(record)
        mono_pending = [] if args.no_mono else [pool.submit(run_mono, p, args.time, args.workers) for p in args.instances]
        everything = earlier + [f.result() for f in pending]
        monos = {m.instance: m for m in (f.result() for f in mono_pending)}
    runs = [r for r in everything if r.variant == FULL]
    print(f"Measured {date.today()}: `{' '.join(['./dev bench quality', *sys.argv[1:]])}`\n")
    print(runs_table(runs, monos, known))
    print()
    print(summary_table(runs, monos, known))
    if ablated:
        print()
        print(ablation_table(everything, sorted({r.instance for r in runs}), variants))


if __name__ == "__main__":
    main()
