"""Solve throughput: K jobs of a fixed mix through the real HTTP API, per configuration.

Each configuration gets fresh processes, a fresh data dir and (for Redis) its own
redis-server on a free port without persistence, never the machine's shared one:

    embedded-1   `timetabler serve --slots 1` (SQLite)
    embedded-2   `timetabler serve --slots 2`
    redis-1      `timetabler serve --redis URL` (solves nothing) + 1 `timetabler worker --slots 1`
    redis-2      the same web + 2 workers with one slot each

All K jobs are submitted at once (in a quick loop, in the mix's order; `--max-active-jobs`
is raised so none is refused), then one thread per job follows its SSE stream to `done`.
The mix is fixed and seeded: the small, medium and large samples, a generated .ctt text and
comp01 / comp04 from ../shared/ctt/instances, in turn; job i has seed i and `--time` s.

Measured per configuration: jobs per minute (K / wall from the first submit to the last
`done`), queue wait (submit to the first `running` event's `updated_at`), submit to the
first event received, a job's run (first `running` event to its terminal event, both by
`updated_at`), the CPU seconds of every process of the configuration and its descendants
(utime + stime + cutime + cstime from /proc over the window), each job's final status.
Processes are not pinned: the solver children share all cores.

    ./dev bench throughput                                # 12 jobs x 6 s, all four configurations
    ./dev bench throughput --jobs 6 --time 5 --configs redis-1,redis-2
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from bench.processes import Api, free_port, stop, tree_cpu_seconds
from solver.ctt import format_ctt
from solver.generate import generate
from tests.redis_support import START_WAIT, answers_ping

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = ROOT.parent / "shared" / "ctt" / "instances"
TOKEN = "bench-throughput-token-0123456789"
TERMINAL = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class Config:
    name: str
    label: str
    redis: bool
    slots: int  # the embedded server's slots, or the number of one-slot workers


CONFIGS = {
    "embedded-1": Config("embedded-1", "embedded, `--slots 1`", False, 1),
    "embedded-2": Config("embedded-2", "embedded, `--slots 2`", False, 2),
    "redis-1": Config("redis-1", "Redis: 1 web + 1 worker (`--slots 1`)", True, 1),
    "redis-2": Config("redis-2", "Redis: 1 web + 2 workers (`--slots 1` each)", True, 2),
}


# ---------------------------------------------------------------- the mix


@dataclass(frozen=True)
class Item:
    label: str
    body: dict[str, Any]  # the JSON body without time_limit and seed


def mix() -> list[Item]:
    generated = generate(courses=60, rooms=10, curricula=20, seed=42, name="generated-60")
    items = [Item(f"sample {size}", {"sample": size}) for size in ("small", "medium", "large")]
    items.append(Item("generated 60 courses", {"ctt": format_ctt(generated), "name": "generated-60"}))
    for name in ("comp01", "comp04"):
        path = INSTANCES / f"{name}.ctt"
        if path.exists():
            items.append(Item(name, {"ctt": path.read_text(), "name": name}))
        else:
            print(f"note: {path} is missing; the mix goes without it", file=sys.stderr)
    return items


# ---------------------------------------------------------------- one job, seen from the client


@dataclass
class JobRun:
    index: int
    item: str
    job_id: str = ""
    submitted: float = 0.0  # time.time() just before the POST
    submitted_mono: float = 0.0
    first_event_mono: float | None = None  # first progress event received
    running_at: float | None = None  # updated_at of the first `running` event
    ended_at: float | None = None  # updated_at of the terminal event
    done_mono: float | None = None  # `done` received
    status: str = "not followed"
    soft: int | None = None
    problem: str = ""

    @property
    def queue_wait(self) -> float | None:
        return None if self.running_at is None else self.running_at - self.submitted

    @property
    def first_event(self) -> float | None:
        return None if self.first_event_mono is None else self.first_event_mono - self.submitted_mono

    @property
    def run(self) -> float | None:
        return None if self.running_at is None or self.ended_at is None else self.ended_at - self.running_at


def follow(api: Api, job: JobRun, deadline: float) -> None:
    """Read the job's stream until `done`; a broken stream is resumed by polling the snapshot."""
    try:
        for name, data in api.stream(job.job_id, timeout=max(deadline - time.monotonic(), 1.0)):
            now = time.monotonic()
            if name == "progress":
                if job.first_event_mono is None:
                    job.first_event_mono = now
                if data["status"] == "running" and job.running_at is None:
                    job.running_at = data["updated_at"]
                if data["status"] in TERMINAL:
                    job.ended_at = data["updated_at"]
                    job.soft = (data.get("best") or {}).get("soft")
            elif name == "done":
                job.done_mono, job.status = now, data["status"]
                return
    except OSError as error:
        job.problem = f"stream broke: {error!r}"
    while time.monotonic() < deadline:
        status, snapshot = api.call("GET", f"/api/jobs/{job.job_id}")
        if status == 200 and snapshot["status"] in TERMINAL:
            job.done_mono, job.status = time.monotonic(), snapshot["status"]
            latest = snapshot.get("latest") or {}
            job.ended_at = job.ended_at or latest.get("updated_at")
            return
        time.sleep(1.0)  # polling a snapshot: the stream is gone
    job.status = "still running at the deadline"


# ---------------------------------------------------------------- processes of a configuration


@dataclass
class Started:
    """A configuration's processes by role, and where their logs are."""

    web: subprocess.Popen[bytes]
    solvers: list[subprocess.Popen[bytes]] = field(default_factory=list)  # the workers (Redis)
    redis: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    def roles(self) -> dict[str, list[subprocess.Popen[bytes]]]:
        return {"web": [self.web], "workers": self.solvers, "redis": [self.redis] if self.redis else []}

    def cpu(self) -> dict[str, float]:
        return {role: sum(tree_cpu_seconds(p.pid) for p in procs) for role, procs in self.roles().items()}

    def stop(self) -> None:
        for process in [self.web, *self.solvers]:
            stop(process, group=True)
        if self.redis is not None:
            stop(self.redis)


def launch(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 (lives as long as the process)
    return subprocess.Popen([sys.executable, "-m", "app", *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH: the Redis configurations need it")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + START_WAIT
    while not answers_ping(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise SystemExit(f"redis-server on port {port} did not come up")
        time.sleep(0.01)  # a starting process: nothing to wait on but its port
    return process, f"redis://127.0.0.1:{port}/0"


def wait_for_line(log: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{log.name}: exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.1)  # a starting process: its log is all there is to watch
    print(f"note: {log.name} did not log {text!r} within {timeout:g} s; measuring anyway", file=sys.stderr)


def start(config: Config, workdir: Path, jobs: int) -> tuple[Started, Api]:
    workdir.mkdir()
    tokens = workdir / "tokens.txt"
    tokens.write_text(f"{TOKEN} bench admin\n")
    port = free_port()
    web_args = ["serve", "--port", str(port), "--data-dir", str(workdir / "data"), "--tokens", str(tokens),
                "--max-active-jobs", str(jobs + 10), "--max-streams-per-user", "0", "--login-failures", "0"]
    redis, url = start_redis(workdir) if config.redis else (None, "")
    web_args += ["--redis", url] if config.redis else ["--slots", str(config.slots)]
    started = Started(launch(web_args, workdir / "web.log"), redis=redis, logs=[workdir / "web.log"])
    try:
        api = Api(port, TOKEN)
        api.wait_healthy(started.web)
        for n in range(config.slots if config.redis else 0):
            log = workdir / f"worker{n}.log"
            started.solvers.append(launch(["worker", "--redis", url, "--slots", "1"], log))
            started.logs.append(log)
        for process, log in zip(started.solvers, started.logs[1:]):
            wait_for_line(log, "slots, lease", process)
    except BaseException:
        started.stop()
        raise
    return started, api


# ---------------------------------------------------------------- one configuration


@dataclass
class Result:
    config: Config
    jobs: list[JobRun]
    wall: float
    cpu: dict[str, float]
    problems: list[str]


def measure(config: Config, items: list[Item], args: argparse.Namespace, workdir: Path) -> Result:
    print(f"{config.name}: starting", file=sys.stderr)
    started, api = start(config, workdir / config.name, args.jobs)
    problems: list[str] = []
    try:
        runs = [JobRun(i, items[i % len(items)].label) for i in range(args.jobs)]
        # generous: every job run one after another on one slot, twice, plus start-up
        deadline = time.monotonic() + 2 * args.jobs * (args.time + 10) / config.slots + 120
        cpu_before = started.cpu()
        threads = []
        for run in runs:
            body = {**items[run.index % len(items)].body, "time_limit": args.time, "seed": run.index}
            run.submitted, run.submitted_mono = time.time(), time.monotonic()
            status, answer = api.call("POST", "/api/jobs", body)
            if status != 202:
                run.status = f"refused ({status})"
                problems.append(f"job {run.index} ({run.item}): POST /api/jobs answered {status}: {answer}")
                continue
            run.job_id = answer["id"]
            thread = threading.Thread(target=follow, args=(api, run, deadline), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        ends = [run.done_mono for run in runs if run.done_mono is not None]
        wall = (max(ends) if ends else time.monotonic()) - runs[0].submitted_mono
        cpu_after = started.cpu()
        cpu = {role: cpu_after[role] - cpu_before[role] for role in cpu_after}
        problems += [f"job {r.index} ({r.item}, {r.job_id}): {r.status} {r.problem}".rstrip()
                     for r in runs if r.status != "completed" or r.problem]
        if problems:
            problems += logs_worth_seeing(started.logs)
        print(f"{config.name}: {sum(r.status == 'completed' for r in runs)} of {len(runs)} completed in {wall:.1f} s",
              file=sys.stderr)
        return Result(config, runs, wall, cpu, problems)
    finally:
        started.stop()


def logs_worth_seeing(logs: list[Path]) -> list[str]:
    lines = []
    for log in logs:
        text = log.read_text(errors="replace") if log.exists() else ""
        bad = [line for line in text.splitlines() if any(w in line for w in ("ERROR", "Traceback", "WARNING"))]
        lines += [f"{log.name}: {line}" for line in bad[-10:]]
    return lines


# ---------------------------------------------------------------- the report


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def per_minute(result: Result) -> float:
    completed = sum(run.status == "completed" for run in result.jobs)
    return completed / result.wall * 60 if result.wall > 0 else float("nan")


def summary_row(result: Result, cores: int) -> str:
    runs = result.jobs
    waits = [r.queue_wait for r in runs if r.queue_wait is not None]
    firsts = [r.first_event for r in runs if r.first_event is not None]
    walls = [r.run for r in runs if r.run is not None]
    cpu = result.cpu
    total_cpu = sum(cpu.values())
    statuses = {s: sum(r.status == s for r in runs) for s in dict.fromkeys(r.status for r in runs)}
    cpu_split = f"{cpu['web']:.1f} + {cpu['workers']:.1f} + {cpu['redis']:.2f}" if result.config.redis \
        else f"{cpu['web']:.1f}"
    return " | ".join([
        result.config.label,
        ", ".join(f"{n} {s}" for s, n in statuses.items()),
        f"{result.wall:.1f}",
        f"**{per_minute(result):.2f}**",
        f"{quantile(waits, 0.5):.1f} / {quantile(waits, 0.95):.1f}",
        f"{quantile(firsts, 0.5) * 1000:.0f} / {max(firsts) * 1000:.0f}" if firsts else "-",
        f"{statistics.median(walls):.2f} / {max(walls):.2f}" if walls else "-",
        f"{total_cpu:.1f} ({cpu_split})",
        f"{total_cpu / (result.wall * cores) * 100:.0f} %",
    ])


SUMMARY_HEADER = ("| configuration | final status | wall s | jobs / min | queue wait p50 / p95 s "
                  "| submit → first event p50 / max ms | run p50 / max s | CPU s (web + workers + redis) "
                  "| CPU of all cores |\n|---|---|---|---|---|---|---|---|---|")


def job_table(result: Result) -> list[str]:
    lines = [f"**{result.config.label}**", "",
             "| job | instance | status | queue wait s | first event ms | run s | soft |", "|---|---|---|---|---|---|---|"]
    fmt = lambda v, scale=1.0, digits=1: "-" if v is None else f"{v * scale:.{digits}f}"  # noqa: E731
    for run in result.jobs:
        lines.append(f"| {run.index} | {run.item} | {run.status} | {fmt(run.queue_wait)} | "
                     f"{fmt(run.first_event, 1000, 0)} | {fmt(run.run, 1, 2)} | {'-' if run.soft is None else run.soft} |")
    return lines + [""]


def ratio_lines(results: list[Result]) -> list[str]:
    by = {r.config.name: r for r in results}
    lines = []
    for two, one, what in (("redis-2", "redis-1", "Redis, 2 workers / 1 worker"),
                           ("embedded-2", "embedded-1", "embedded, 2 slots / 1 slot")):
        if two in by and one in by:
            lines.append(f"- {what}: **{ratio(per_minute(by[two]), per_minute(by[one]))}** "
                         f"({per_minute(by[two]):.2f} / {per_minute(by[one]):.2f} jobs per minute)")
    if "redis-1" in by and "embedded-1" in by:
        lines.append(f"- Redis 1 worker / embedded 1 slot: {ratio(per_minute(by['redis-1']), per_minute(by['embedded-1']))}")
    return lines


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "- (nothing completed)"


def report(results: list[Result], items: list[Item], args: argparse.Namespace, argv: list[str],
           loads: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
    cores = os.cpu_count() or 1
    command = shlex.join(["./dev", "bench", "throughput", *argv])
    print(f"Measured {date.today()} on {cores} cores ({len(os.sched_getaffinity(0))} usable) with `{command}`. "
          f"Load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in loads[0])}; "
          f"after: {', '.join(f'{v:.2f}' for v in loads[1])} (other work on the machine shares the cores).\n")
    print(f"{args.jobs} jobs submitted at once per configuration, {args.time:g} s time limit each, job i with "
          f"seed i, the mix in turn: {', '.join(item.label for item in items)}. Fresh processes, data dir and "
          "redis-server per configuration; nothing pinned. Queue wait: submit to the first `running` event; "
          "run: that event to the terminal one (both by the events' `updated_at`); first event: as received "
          "on the SSE stream. CPU: utime + stime of every process of the configuration and its descendants, "
          "reaped ones included (cutime + cstime), from /proc, first submit to last `done`.\n")
    print(SUMMARY_HEADER)
    for result in results:
        print("| " + summary_row(result, cores) + " |")
    print()
    for line in ratio_lines(results):
        print(line)
    print()
    for result in results:
        for problem in result.problems:
            print(f"**warning** ({result.config.name}): {problem}")
    if any(result.problems for result in results):
        print()
    if args.per_job:
        for result in results:
            print("\n".join(job_table(result)))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=12, help="jobs submitted per configuration (default 12)")
    parser.add_argument("--time", type=float, default=6.0, help="each job's time limit, seconds (default 6)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"default {','.join(CONFIGS)}")
    parser.add_argument("--no-per-job", dest="per_job", action="store_false", help="leave out the per-job tables")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    unknown = [name for name in names if name not in CONFIGS]
    if unknown or not names or args.jobs < 1:
        raise SystemExit(f"bad --configs {unknown or args.configs!r} (choose from {', '.join(CONFIGS)}) or --jobs")
    items = mix()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        results = [measure(CONFIGS[name], items, args, Path(tmp)) for name in names]
    report(results, items, args, argv, (load_before, os.getloadavg()))


if __name__ == "__main__":
    main()
