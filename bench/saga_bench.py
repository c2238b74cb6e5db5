"""Job runner figures: event-loop lag during a solve, cancel latency, ETA accuracy.

Prints Markdown tables. The ETA part runs every instance for `--time` seconds.

    ./dev bench saga_bench --time 60 --instances comp01 comp02 comp03 comp04 comp05 comp06 comp07
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from saga.jobs import CancelResult, JobSpec
from saga.runner import JobRunner
from solver.ctt import parse_ctt
from solver.model import Instance
from solver.progress import CLUSTERING, CPSAT, GA, LOADING, REFINEMENT
from tests.saga_sink import CollectingSink

INSTANCES = Path(__file__).resolve().parents[1].parent / "shared" / "ctt" / "instances"
LAG_PROBE = 0.005
CANCEL_STAGES = (LOADING, CLUSTERING, CPSAT, GA, REFINEMENT)


@dataclass(frozen=True)
class EtaPoint:
    instance: str
    fraction: float
    eta: float | None
    actual: float
    run: float  # first to last event


def _load(name: str) -> Instance:
    path = INSTANCES / f"{name}.ctt"
    return parse_ctt(path.read_text(), source=path.name)


def _runner(sink: CollectingSink) -> JobRunner:
    return JobRunner(sink, sink, slots=1)


async def _probe(until: asyncio.Future[None] | asyncio.Task[None]) -> tuple[float, float]:
    """Worst and 99th-percentile overshoot of a 5 ms sleep until `until` is done."""
    lags: list[float] = []
    while not until.done():
        start = time.perf_counter()
        await asyncio.sleep(LAG_PROBE)
        lags.append(time.perf_counter() - start - LAG_PROBE)
    lags.sort()
    return lags[-1], lags[int(0.99 * (len(lags) - 1))]


async def loop_lag(instance: Instance, seconds: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Lag while a job runs, and (for comparison on a shared machine) while nothing runs."""
    idle = await _probe(asyncio.ensure_future(asyncio.sleep(min(seconds, 5.0))))
    sink = CollectingSink()
    runner = _runner(sink)
    await runner.submit(JobSpec("lag", instance, time_limit=seconds))
    busy = await _probe(asyncio.ensure_future(runner.wait("lag")))
    await runner.close()
    return busy, idle


async def cancel_latencies(instance: Instance, count: int, seconds: float, seed: int) -> list[tuple[str, float]]:
    """Cancel `count` jobs, each once it reaches a random stage; seconds until the terminal event."""
    rng = random.Random(seed)
    sink = CollectingSink()
    runner = _runner(sink)
    out = []
    try:
        for i in range(count):
            job, stage = f"cancel-{i}", rng.choice(CANCEL_STAGES)
            await runner.submit(JobSpec(job, instance, time_limit=seconds, seed=i))
            await sink.wait_for_event(job, lambda e, s=stage: e.stage == s or e.terminal)
            asked = time.monotonic()
            if await runner.cancel(job) is CancelResult.STOPPING:  # not if it ended first
                await sink.wait_for_event(job, lambda e: e.terminal)
                ended = max(t for kind, j, t in sink.log if kind == "event" and j == job)
                out.append((sink.last(job).stage or "queued", ended - asked))
            await runner.wait(job)
    finally:
        await runner.close()
    return out


async def eta_errors(name: str, seconds: float) -> list[EtaPoint]:
    """ETA shown at 25/50/75 % of the run's wall time against the time that was really left."""
    sink = CollectingSink()
    runner = _runner(sink)
    try:
        await runner.submit(JobSpec(name, _load(name), time_limit=seconds))
        await runner.wait(name)
    finally:
        await runner.close()
    times = [t for kind, job, t in sink.log if kind == "event"]
    events = sink.events[name]
    start, end = times[0], times[-1]
    points = []
    for fraction in (0.25, 0.5, 0.75):
        at = start + fraction * (end - start)
        shown = max(i for i, t in enumerate(times) if t <= at)
        points.append(EtaPoint(name, fraction, events[shown].eta_seconds, end - times[shown], end - start))
    return points


def _eta_table(points: list[EtaPoint]) -> str:
    rows = [
        "| instance | run (s) | at | ETA shown (s) | really left (s) | error (s) | error (% of run) |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in points:
        error = "n/a" if p.eta is None else f"{p.eta - p.actual:+.1f}"
        share = "n/a" if p.eta is None else f"{100 * abs(p.eta - p.actual) / p.run:.1f}"
        shown = "None" if p.eta is None else f"{p.eta:.1f}"
        rows.append(f"| {p.instance} | {p.run:.1f} | {p.fraction:.0%} | {shown} | {p.actual:.1f} | {error} | {share} |")
    return "\n".join(rows)


async def main(args: argparse.Namespace) -> None:
    lag_instance = _load(args.instances[0])
    busy, idle = await loop_lag(lag_instance, args.lag_time)
    print(f"## Event loop lag during a {args.lag_time:.0f} s solve of {args.instances[0]}\n")
    print("| loop | worst (ms) | p99 (ms) | target |\n|---|---|---|---|")
    print(f"| during the solve | {1000 * busy[0]:.1f} | {1000 * busy[1]:.1f} | worst < 20 ms |")
    print(f"| idle, same machine | {1000 * idle[0]:.1f} | {1000 * idle[1]:.1f} | |\n")

    cancels = await cancel_latencies(lag_instance, args.cancels, args.cancel_time, args.seed)
    print(f"## Cancel latency: request to terminal event, {len(cancels)} cancels of running {args.instances[0]} jobs\n")
    print("| stage | cancels | median (s) | max (s) | target |\n|---|---|---|---|---|")
    for stage in [*(s for s in CANCEL_STAGES if any(st == s for st, _ in cancels)), "all"]:
        seconds = [sec for st, sec in cancels if stage in (st, "all")]
        print(f"| {stage} | {len(seconds)} | {statistics.median(seconds):.3f} | {max(seconds):.3f} | < 1 s |")
    print()

    points = []
    for name in args.instances:
        points += await eta_errors(name, args.time)
    print(f"## ETA accuracy (time limit {args.time:.0f} s per instance; run = first to last event)\n")
    print(_eta_table(points))


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time", type=float, default=60.0, help="time limit per instance for the ETA runs (s)")
    parser.add_argument("--instances", nargs="+", default=[f"comp0{i}" for i in range(1, 8)])
    parser.add_argument("--lag-time", type=float, default=10.0, help="time limit of the solve the lag is measured on (s)")
    parser.add_argument("--cancels", type=int, default=20)
    parser.add_argument("--cancel-time", type=float, default=8.0, help="time limit of each job that gets cancelled (s)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_parse()))
