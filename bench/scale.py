"""Scaling with the institution's size: the pipeline on one core, from ~600 to ~9,000 lectures.

Generated instances (solver.generate, 5 days x 8 periods) of about 600, 1,700, 4,300 and
9,000 lectures, seeds 1, 2, 3, each solved at every budget in its own fresh process pinned
to one core (workers=1), so wall time and peak memory are per run. Plain CP-SAT (the
monolithic baseline) runs on the two smaller sizes at the smallest budget, same core and
measurements. Every cost is re-checked with the evaluator. Markdown goes to stdout,
progress lines to stderr.

The README figures (about 40 minutes on 2 cores):

    ./dev bench scale --budgets 60,300 --jobs 2

A quick look, and instance files instead of generated sizes (seed 0 unless --seeds):

    ./dev bench scale --sizes 600 --seeds 1 --budgets 10 --jobs 1
    ./dev bench scale ../shared/ctt/real/*.ctt --budgets 60 --no-baseline
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, replace
from datetime import date
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from solver.ctt import parse_ctt
from solver.evaluate import evaluate
from solver.generate import generate
from solver.model import Instance
from solver.monolithic import solve_monolithic
from solver.pipeline import SolveOptions, solve
from solver.progress import Progress, never_stop

# Size name (about this many lectures) → courses, rooms, curricula.
SIZES = {600: (150, 25, 50), 1700: (400, 60, 130), 4300: (1000, 140, 330), 9000: (2100, 290, 700)}
DAYS, PERIODS_PER_DAY = 5, 8
DEFAULT_SEEDS, FILE_SEEDS = (1, 2, 3), (0,)
DEFAULT_BUDGETS = (60.0, 300.0)
BASELINE_MAX_LECTURES = 2000  # plain CP-SAT on the 600 and 1,700 sizes (and files up to this size)
OVER_BUDGET = 5.0  # seconds of wall time past the budget that fail the run
# Acceptance: every lecture placed on every run up to this size at this budget.
PLACED_TARGETS = ((4300, 60.0), (9000, 300.0))
PIPELINE, MONOLITHIC = "pipeline", "plain CP-SAT"
DASH = "–"


@dataclass(frozen=True)
class Task:
    method: str
    label: str  # the size's name, or the file's stem
    size: int  # the size's name, or the file's lecture count: what the acceptance limits compare with
    seed: int
    budget: float
    path: str | None = None  # an instance file; None for a generated size


@dataclass(frozen=True)
class Run:
    task: Task
    lectures: int = 0
    first_complete: float | None = None  # seconds from the start of the solve to the first hard-0 timetable
    hard: int = 0
    soft: int = 0
    unplaced: int = 0
    wall: float = 0.0
    peak_mb: float = 0.0
    core: int = -1
    claimed: str = ""  # the solver's own cost, when it differs from the evaluator's
    error: str = ""

    @property
    def over(self) -> float:
        return self.wall - self.task.budget

    @property
    def within_budget(self) -> bool:
        return not self.error and self.over <= OVER_BUDGET

    @property
    def complete(self) -> bool:
        return not self.error and self.unplaced == 0 and self.hard == 0


# ---------------------------------------------------------------- the child: one run, one core


def _pin(core: int) -> None:
    """Every thread of this process on `core` (threads started by imports included)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), {core})
        except OSError:  # a thread that ended meanwhile
            pass


def _load(task: Task) -> Instance:
    if task.path is not None:
        return parse_ctt(Path(task.path).read_text(), source=task.path)
    courses, rooms, curricula = SIZES[task.size]
    return generate(courses=courses, rooms=rooms, curricula=curricula, days=DAYS,
                    periods_per_day=PERIODS_PER_DAY, seed=task.seed)


def measure(task: Task, core: int) -> Run:
    _pin(core)
    instance = _load(task)
    first: list[float] = []

    def on_progress(p: Progress) -> None:
        if not first and p.best is not None and p.best.hard == 0:
            first.append(time.monotonic() - started)

    started = time.monotonic()
    if task.method == PIPELINE:
        result = solve(instance, SolveOptions(time_limit=task.budget, seed=task.seed, workers=1), on_progress)
        timetable, claimed = result.timetable, result.cost
    else:  # no progress from the monolithic model: its first complete timetable is not observed
        timetable = solve_monolithic(instance, time_limit=task.budget, workers=1, seed=task.seed, should_stop=never_stop)
        claimed = None
    wall = time.monotonic() - started
    cost = evaluate(timetable)  # re-check: never trust the solver's own figure
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    return Run(task, instance.index.n_lectures, first[0] if first else None, cost.hard, cost.soft,
               len(timetable.unplaced), wall, peak_kb / 1024, core,
               "" if claimed is None or claimed == cost else f"hard {claimed.hard} soft {claimed.soft}")


def _child(task: Task, core: int, conn: Connection) -> None:
    try:
        run = measure(task, core)
    except Exception as e:  # a solver bug fails this run, not the bench
        run = Run(task, core=core, error=f"{type(e).__name__}: {e}")
    conn.send(run)
    conn.close()


# ---------------------------------------------------------------- the parent: slots and cores


def _hang_limit(budget: float) -> float:
    """A run still going after this long is killed (and reported as failed)."""
    return 2 * budget + 120


def run_all(tasks: Sequence[Task], jobs: int, log: Callable[[Run, int, float], None]) -> list[Run]:
    """Every task in a fresh spawned process; slot i runs on core i mod cores."""
    ctx = multiprocessing.get_context("spawn")
    cores = sorted(os.sched_getaffinity(0))
    pending = list(tasks)
    free = list(range(jobs))
    running: dict[Connection, tuple[multiprocessing.process.BaseProcess, Task, int, int, float]] = {}  # slot, core, start
    runs: list[Run] = []
    bench_start = time.monotonic()

    def finish(conn: Connection, run: Run) -> None:
        proc, _, slot, _, _ = running.pop(conn)
        proc.join()
        conn.close()
        free.append(slot)
        free.sort()
        runs.append(run)
        log(run, len(runs), time.monotonic() - bench_start)

    try:
        while pending or running:
            while pending and free:
                slot, task = free.pop(0), pending.pop(0)
                core = cores[slot % len(cores)]
                receive, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, args=(task, core, send), daemon=True)
                proc.start()
                send.close()
                running[receive] = (proc, task, slot, core, time.monotonic())
            for conn in wait(list(running), timeout=5.0):
                proc, task, _, core, _ = running[conn]
                try:
                    run = conn.recv()
                except EOFError:  # died without a word: out of memory, a signal
                    proc.join()
                    run = Run(task, core=core, error=f"child exited with status {proc.exitcode}")
                finish(conn, run)
            for conn, (proc, task, _, core, started) in list(running.items()):
                if time.monotonic() - started > _hang_limit(task.budget):
                    proc.kill()
                    finish(conn, Run(task, core=core, error=f"killed after {_hang_limit(task.budget):.0f} s"))
    finally:
        for proc, *_ in running.values():
            proc.kill()
            proc.join()
    return runs


# ---------------------------------------------------------------- figures


def slope(points: Iterable[tuple[float, float | None]]) -> float | None:
    """Least-squares slope of log(y) against log(x); None when a point has no (positive)
    value or fewer than two sizes remain."""
    points = list(points)
    if any(y is None or y <= 0 for _, y in points) or len({x for x, _ in points}) < 2:
        return None
    xs, ys = zip(*points)
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def _mean(values: Iterable[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _num(x: float | None, digits: int = 1) -> str:
    if x is None:
        return DASH
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.{digits}f}"


def _seconds(x: float | None) -> str:
    return DASH if x is None else f"{x:.1f}"


def _over(run: Run) -> str:
    flag = " ⚠" if run.over > OVER_BUDGET else ""
    return f"{run.over:+.1f}{flag}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


RUN_HEADER = ("lectures", "seed", "first complete s", "hard", "soft", "unplaced", "wall s", "wall − budget",
              "peak MB")


def _run_row(run: Run) -> list[str]:
    t = run.task
    if run.error:
        return [t.label, _num(run.lectures or None), str(t.seed), DASH, f"failed: {run.error}", DASH, DASH, DASH, DASH,
                DASH]
    return [t.label, str(run.lectures), str(t.seed), _seconds(run.first_complete), str(run.hard), str(run.soft),
            str(run.unplaced), _seconds(run.wall), _over(run), f"{run.peak_mb:.0f}"]


def _groups(runs: Iterable[Run]) -> dict[tuple[float, int, str], list[Run]]:
    """Runs by (budget, size, label), in that order."""
    out: dict[tuple[float, int, str], list[Run]] = {}
    for r in sorted(runs, key=lambda r: (r.task.budget, r.task.size, r.task.label, r.task.seed)):
        out.setdefault((r.task.budget, r.task.size, r.task.label), []).append(r)
    return out


@dataclass(frozen=True)
class SizeMeans:
    lectures: float | None
    first_complete: float | None
    reached: int  # runs that reached a complete timetable
    hard: float | None
    soft: float | None
    soft_complete: float | None  # over the runs that ended complete only
    unplaced: float | None
    wall: float | None
    peak_mb: float | None


def size_means(runs: Sequence[Run]) -> SizeMeans:
    ok = [r for r in runs if not r.error]
    return SizeMeans(
        _mean(r.lectures for r in ok),
        _mean(r.first_complete for r in ok),
        sum(r.first_complete is not None for r in ok),
        _mean(r.hard for r in ok),
        _mean(r.soft for r in ok),
        _mean(r.soft for r in ok if r.complete),
        _mean(r.unplaced for r in ok),
        _mean(r.wall for r in ok),
        _mean(r.peak_mb for r in ok),
    )


def summary_table(runs: Sequence[Run], name: str) -> str:
    rows = []
    for (budget, _, label), group in _groups(runs).items():
        m = size_means(group)
        ok = sum(not r.error for r in group)
        first = _seconds(m.first_complete) + ("" if m.reached == ok else f" ({m.reached} of {ok})")
        rows.append([label, _num(m.lectures, 0), _num(budget), f"{ok} of {len(group)}", first, _num(m.hard),
                     _num(m.soft), _num(m.unplaced), _seconds(m.wall), _num(m.peak_mb, 0)])
    return _table((name, "lectures", "budget s", "runs", "first complete s", "hard", "soft", "unplaced", "wall s",
                   "peak MB"), rows)


GROWTH_METRICS: tuple[tuple[str, Callable[[SizeMeans], float | None]], ...] = (
    ("first complete", lambda m: m.first_complete),
    ("wall", lambda m: m.wall),
    ("peak memory", lambda m: m.peak_mb),
    ("soft (complete runs)", lambda m: m.soft_complete),
)


def growth_table(runs: Sequence[Run]) -> str:
    rows = []
    for budget in sorted({r.task.budget for r in runs}):
        means = [size_means(g) for (b, _, _), g in _groups(runs).items() if b == budget]
        means = [m for m in means if m.lectures]
        cells = [_num(budget), str(len(means))]
        for _, metric in GROWTH_METRICS:
            s = slope((m.lectures, metric(m)) for m in means)
            cells.append(DASH if s is None else f"{s:.2f}")
        rows.append(cells)
    return _table(("budget s", "sizes", *(name for name, _ in GROWTH_METRICS)), rows)


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return DASH
    if b == 0:
        return "– (both 0)" if a == 0 else "∞"
    return f"{a / b:.2f}"


def comparison_table(pipeline: Sequence[Run], baseline: Sequence[Run], name: str) -> str:
    """Per size and budget, the mean over the seeds both methods finished."""
    done = {(r.task.label, r.task.seed, r.task.budget): r for r in pipeline if not r.error}
    rows = []
    for (budget, _, label), group in _groups(baseline).items():
        pairs = [(done[k], b) for b in group if not b.error and (k := (label, b.task.seed, budget)) in done]
        if not pairs:
            rows.append([label, _num(budget), "0", *[DASH] * 6])
            continue
        p_soft, b_soft = _mean(p.soft for p, _ in pairs), _mean(b.soft for _, b in pairs)
        p_unplaced, b_unplaced = _mean(p.unplaced for p, _ in pairs), _mean(b.unplaced for _, b in pairs)
        # A soft cost with lectures missing is not comparable: the ratio needs both complete.
        comparable = all(p.complete and b.complete for p, b in pairs)
        rows.append([label, _num(budget), str(len(pairs)), _num(p_soft), _num(b_soft),
                     _ratio(p_soft, b_soft) if comparable else "– (incomplete)", _num(p_unplaced), _num(b_unplaced),
                     _ratio(p_unplaced, b_unplaced)])
    return _table((name, "budget s", "seeds", "soft pipeline", "soft plain CP-SAT", "soft ratio",
                   "unplaced pipeline", "unplaced plain CP-SAT", "unplaced ratio"), rows)


def _yes_no(passed: int, total: int) -> str:
    return f"{'yes' if passed == total else 'no'} ({passed} of {total})"


def verdict(runs: Sequence[Run]) -> list[str]:
    lines = []
    for limit, budget in PLACED_TARGETS:
        chosen = [r for r in runs if r.task.size <= limit and r.task.budget == budget]
        what = f"every lecture placed on all runs ≤ {limit:,} lectures at {budget:.0f} s"
        lines.append(f"- {what}: " + (_yes_no(sum(r.complete for r in chosen), len(chosen)) if chosen
                                       else "not measured (no such run)"))
    lines.append(f"- wall ≤ budget + {OVER_BUDGET:.0f} s on every run: "
                 + _yes_no(sum(r.within_budget for r in runs), len(runs)))
    return lines


def run_tables(runs: Sequence[Run], name: str, title: str) -> list[str]:
    """One table per budget, a row per run; `title` formats the budget."""
    out = []
    for budget in sorted({r.task.budget for r in runs}):
        rows = (_run_row(r) for g in _groups(runs).values() for r in g if r.task.budget == budget)
        out += ["", title.format(budget), "", _table((name, *RUN_HEADER), rows)]
    return out


def report(runs: Sequence[Run], command: str, jobs: int, files: bool, baseline_note: str) -> str:
    pipeline = [r for r in runs if r.task.method == PIPELINE]
    baseline = [r for r in runs if r.task.method == MONOLITHIC]
    cores = len(os.sched_getaffinity(0))
    name = "instance" if files else "size"
    if files:
        source = "Instance files, as given."
    else:
        shapes = "; ".join(f"{size}: {c}/{r}/{q}" for size, (c, r, q) in SIZES.items()
                           if any(run.task.size == size for run in runs))
        source = (f"Instances generated in memory by `solver.generate`, {DAYS} days × {PERIODS_PER_DAY} periods, "
                  f"courses/rooms/curricula per size: {shapes}.")
    out = [
        "## Scaling with the institution's size",
        "",
        f"Measured {date.today()} with `{command}`.",
        "",
        f"Each run alone in a fresh process pinned to one core (workers=1), {jobs} at a time on {cores} cores. "
        f"{source} Every cost re-checked by the evaluator. *first complete*: seconds from the start of the solve "
        "to the first reported timetable with every lecture placed and no hard violation (– never). "
        "*peak MB*: the run's maximum resident set size. "
        f"⚠: more than {OVER_BUDGET:.0f} s over budget.",
    ]
    out += run_tables(pipeline, name, "### Pipeline, budget {:.0f} s")
    out += ["", "### Mean over seeds", "", summary_table(pipeline, name),
            "", "### Growth: slope of log(metric) against log(lectures)", "",
            "Least squares over the sizes' means; 1 is linear, 2 quadratic. A metric is left out (–) when a size "
            "has no value for it; soft cost counts only the runs that ended complete.", "",
            growth_table(pipeline),
            "", "### Baseline: plain CP-SAT (one model of the whole problem)", "", baseline_note]
    out += run_tables(baseline, name, "Budget {:.0f} s:")
    if baseline:
        out += ["", "Pipeline against plain CP-SAT (ratio pipeline / plain CP-SAT; soft only when both complete):",
                "", comparison_table(pipeline, baseline, name)]
    mismatched = [r for r in runs if r.claimed]
    if mismatched:
        out += ["", "Solver's own cost differs from the evaluator's: "
                + "; ".join(f"{r.task.method} {r.task.label} seed {r.task.seed} {r.task.budget:.0f} s claimed "
                            f"{r.claimed}" for r in mismatched) + "."]
    out += ["", "### Acceptance (pipeline runs)", "", *verdict(pipeline)]
    return "\n".join(out)


# ---------------------------------------------------------------- command line


def _list(kind: Callable[[str], float | int]) -> Callable[[str], list]:
    def parse(text: str) -> list:
        try:
            return [kind(part) for part in text.split(",") if part.strip()]
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def _size(text: str) -> int:
    size = int(text)
    if size not in SIZES:
        raise ValueError(f"unknown size {size}: choose from {','.join(map(str, SIZES))}")
    return size


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instances", nargs="*", help=".ctt files instead of the generated sizes")
    parser.add_argument("--sizes", type=_list(_size), default=list(SIZES),
                        help="generated sizes, comma-separated (default 600,1700,4300,9000)")
    parser.add_argument("--seeds", type=_list(int), default=None,
                        help="comma-separated (default 1,2,3; 0 for instance files)")
    parser.add_argument("--budgets", type=_list(float), default=list(DEFAULT_BUDGETS),
                        help="seconds per run, comma-separated (default 60,300)")
    parser.add_argument("--baseline-budgets", type=_list(float), default=None,
                        help="budgets at which plain CP-SAT also runs (default: the smallest of --budgets)")
    parser.add_argument("--no-baseline", action="store_true", help="skip plain CP-SAT")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, one core each (default 2)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return args


def plan(args: argparse.Namespace) -> tuple[list[Task], str]:
    """The runs, and a line saying where the baseline runs."""
    if args.instances:
        seeds = args.seeds or list(FILE_SEEDS)
        instances = [(Path(p).stem, _load(Task(PIPELINE, "", 0, 0, 0, p)).index.n_lectures, p) for p in args.instances]
    else:
        seeds = args.seeds or list(DEFAULT_SEEDS)
        instances = [(str(size), size, None) for size in sorted(args.sizes)]
    budgets = sorted(args.budgets)
    tasks = [Task(PIPELINE, label, size, seed, budget, path)
             for budget in budgets for label, size, path in instances for seed in seeds]
    if args.no_baseline:
        return tasks, "Not run (`--no-baseline`)."
    wanted = args.baseline_budgets or budgets[:1]
    at = [b for b in budgets if b in wanted]
    small = [i for i in instances if i[1] <= BASELINE_MAX_LECTURES]
    tasks += [replace(t, method=MONOLITHIC) for t in tasks
              if t.budget in at and any(t.label == label for label, *_ in small)]
    where = ", ".join(label for label, *_ in small) or "none"
    note = (f"Same core and measurements, on the instances of at most {BASELINE_MAX_LECTURES:,} lectures ({where}), "
            f"only at {', '.join(f'{b:.0f} s' for b in at) or 'no budget'} (`--baseline-budgets`; the larger sizes "
            "and budgets would double the bench's time). It reports no progress, so its first complete timetable "
            "is not observed (–).")
    return tasks, note


def _log(total: int) -> Callable[[Run, int, float], None]:
    def log(run: Run, done: int, elapsed: float) -> None:
        t = run.task
        head = f"[{done:>{len(str(total))}}/{total} {elapsed / 60:5.1f} min] {t.method} {t.label} seed {t.seed}, " \
               f"{t.budget:.0f} s, core {run.core}: "
        if run.error:
            body = f"FAILED {run.error}"
        else:
            body = (f"hard {run.hard}, soft {run.soft}, unplaced {run.unplaced}/{run.lectures}, first complete "
                    f"{_seconds(run.first_complete)}, wall {run.wall:.1f} s ({_over(run)}), peak {run.peak_mb:.0f} MB")
        print(head + body, file=sys.stderr, flush=True)
    return log


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    command = shlex.join(["./dev", "bench", "scale", *(sys.argv[1:] if argv is None else argv)])
    tasks, baseline_note = plan(args)
    cores = len(os.sched_getaffinity(0))
    if args.jobs > cores:
        print(f"warning: --jobs {args.jobs} on {cores} cores: runs will share cores", file=sys.stderr)
    estimate = sum(t.budget for t in tasks) / max(1, min(args.jobs, len(tasks))) / 60
    print(f"bench scale: {len(tasks)} runs, {args.jobs} at a time, about {estimate:.1f} min", file=sys.stderr,
          flush=True)
    runs = run_all(tasks, args.jobs, _log(len(tasks)))
    print(report(runs, command, args.jobs, bool(args.instances), baseline_note))


if __name__ == "__main__":
    main()
