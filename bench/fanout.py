"""SSE fan-out: how many live subscribers one web process serves, and how fast.

1. Records a real job: `timetabler serve` solves the small sample for `--record-seconds`
   and the bench keeps every event its stream sent.
2. Runs each scenario against a fresh web process (`bench/fanout_server.py`: the real app,
   whose jobs replay that recording at its original pace through the same publish path as
   a solve's), pinned to core 0, with the subscribers in another process
   (`bench/fanout_client.py`) pinned to core 1. No solver child runs while measuring.
3. Prints a Markdown table: connect rate and time, latency (event's `updated_at` to
   received) over all (subscriber, live event) pairs, fan-out spread per event, events per
   subscriber and how many were coalesced or paced, `done` received, server RSS per open
   stream, server CPU per delivered event, the client's CPU. In the same run, the seeds'
   design (an SSE endpoint polling the job's state every 500 ms) is the baseline.

    ./dev bench fanout                      # 1,000 ours and baseline, 10,000, 100 jobs x 100
    ./dev bench fanout --scenarios ours:1x1000,poll:1x1000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.processes import Api, cpu_seconds, free_port, proc_status, stop

TOKEN = "bench-fanout-token-0123456789"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIOS = "ours:1x1000,poll:1x1000,ours:1x10000,ours:100x100"
SERVER_CORE, CLIENT_CORE = 0, 1


@dataclass(frozen=True)
class Scenario:
    design: str  # "ours" | "poll"
    jobs: int
    per_job: int

    @property
    def path(self) -> str:
        return "/api/jobs/{id}/events" if self.design == "ours" else "/api/bench/poll/{id}"

    @property
    def label(self) -> str:
        who = "ours" if self.design == "ours" else "poll loop (seeds)"
        return f"{who}, {self.jobs} job{'s' if self.jobs > 1 else ''} x {self.per_job:,}"


def parse_scenarios(text: str) -> list[Scenario]:
    scenarios = []
    for item in text.split(","):
        design, _, size = item.partition(":")
        jobs, _, per_job = size.partition("x")
        if design not in ("ours", "poll") or not jobs.isdigit() or not per_job.isdigit():
            raise SystemExit(f"bad scenario {item!r}: write DESIGN:JOBSxSUBSCRIBERS, e.g. ours:1x1000")
        scenarios.append(Scenario(design, int(jobs), int(per_job)))
    return scenarios


def events(api: Api, job_id: str) -> list[dict[str, Any]]:
    """Every progress event of the job's stream, read until `done`."""
    return [data for name, data in api.stream(job_id) if name == "progress"]


def start(command: list[str], data_dir: Path, core: int | None) -> subprocess.Popen[bytes]:
    tokens = data_dir / "tokens.txt"
    tokens.write_text(f"{TOKEN} bench admin\n")
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 (lives as long as the process)
    process = subprocess.Popen(command + ["--data-dir", str(data_dir), "--tokens", str(tokens)],
                               stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if core is not None:
        os.sched_setaffinity(process.pid, {core})
    return process


def record(seconds: float, workdir: Path) -> list[dict[str, Any]]:
    """A real job's events: the small sample solved for `seconds` by `timetabler serve`."""
    port = free_port()
    data_dir = workdir / "record"
    data_dir.mkdir()
    server = start([sys.executable, "-m", "app.commands.cli", "serve", "--port", str(port), "--slots", "1"], data_dir, None)
    try:
        api = Api(port, TOKEN)
        api.wait_healthy(server)
        status, answer = api.call("POST", "/api/jobs", {"sample": "small", "time_limit": seconds})
        if status != 202:
            raise SystemExit(f"recording: POST /api/jobs answered {status}: {answer}")
        return events(api, answer["id"])
    finally:
        stop(server)


def measure(scenario: Scenario, recording: Path, live_events: int, workdir: Path) -> dict[str, Any]:
    port = free_port()
    data_dir = workdir / f"{scenario.design}-{scenario.jobs}x{scenario.per_job}"
    data_dir.mkdir()
    subscribers = scenario.jobs * scenario.per_job
    server = start([sys.executable, "-m", "bench.fanout_server", "--recording", str(recording), "--port", str(port),
                    "--max-connections", "0", "--max-connections-per-client", "0", "--max-streams", "0",
                    "--max-streams-per-user", "0", "--max-active-jobs", str(scenario.jobs + 10),
                    "--login-failures", "0"], data_dir, SERVER_CORE)
    try:
        api = Api(port, TOKEN)
        api.wait_healthy(server)
        jobs = []
        for _ in range(scenario.jobs):
            status, answer = api.call("POST", "/api/jobs", {"sample": "small", "time_limit": 60})
            if status != 202:
                raise SystemExit(f"POST /api/jobs answered {status}: {answer}")
            jobs.append(answer["id"])
        rss_before = proc_status(server.pid, "VmRSS")
        client = subprocess.Popen(
            [sys.executable, "-m", "bench.fanout_client", "--port", str(port), "--token", TOKEN, "--jobs", ",".join(jobs),
             "--per-job", str(scenario.per_job), "--path", scenario.path],
            stdout=subprocess.PIPE, cwd=ROOT,
        )
        os.sched_setaffinity(client.pid, {CLIENT_CORE})
        assert client.stdout is not None
        json.loads(client.stdout.readline())  # all connected; the replays start now
        rss_connected = proc_status(server.pid, "VmRSS")
        cpu_start = cpu_seconds(server.pid)
        summary = json.loads(client.stdout.readline())
        client.wait()
        cpu_live = cpu_seconds(server.pid) - cpu_start
        summary.update(
            rss_per_stream=(rss_connected - rss_before) * 1024 / max(summary["connected"], 1),
            rss_peak_mb=proc_status(server.pid, "VmHWM") / 1024,
            server_cpu_live=cpu_live,
            live_events=live_events,
            cores={"web": sorted(os.sched_getaffinity(server.pid)), "client": sorted(os.sched_getaffinity(client.pid))
                   if client.returncode is None else [CLIENT_CORE]},
        )
        return summary
    finally:
        stop(server)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def row(scenario: Scenario, r: dict[str, Any]) -> str:
    lat, spread, conn = r["latencies"], r["spreads"], r["connect_times"]
    per_sub_live = r["delivered"] / max(r["subscribers"], 1)
    ms = lambda v: f"{v * 1000:.1f}" if v < 0.01 else f"{v * 1000:.0f}"  # noqa: E731
    return " | ".join([
        scenario.label,
        f"{r['connected']:,}/{r['subscribers']:,}",
        f"{r['connected'] / r['connect_wall']:,.0f}/s in {r['connect_wall']:.1f} s" if r["connect_wall"] else "-",
        f"{ms(pct(conn, 0.5))} / {ms(pct(conn, 0.99))}",
        f"{ms(pct(lat, 0.5))} / {ms(pct(lat, 0.95))} / {ms(pct(lat, 0.99))} / {ms(lat[-1]) if lat else '-'}",
        f"{ms(pct(r['firsts'], 0.5))} / {ms(pct(spread, 0.5))} / {ms(spread[-1]) if spread else '-'}",
        f"{per_sub_live:.1f} of {r['live_events']} ({r['live_events'] - per_sub_live:.1f})",
        f"{r['done']:,}",
        f"{r['rss_per_stream'] / 1024:.1f} KB ({r['rss_peak_mb']:.0f} MB peak)",
        f"{r['server_cpu_live'] / max(r['delivered'], 1) * 1e6:.1f} µs",
        f"{r['cpu_connect']:.1f} s + {r['cpu_live']:.1f} s of {r['live_wall']:.0f} s",
    ])


HEADER = ("| scenario | connected | connect rate | connect p50 / p99 ms | latency p50 / p95 / p99 / max ms "
          "| first receiver p50, spread p50 / max ms | live events per subscriber of published (not received) | done "
          "| server RSS per stream | server CPU per delivered event | client CPU (connect + live) |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS, help=f"default {DEFAULT_SCENARIOS}")
    parser.add_argument("--record-seconds", type=float, default=20.0, help="the recorded job's time limit")
    args = parser.parse_args()
    scenarios = parse_scenarios(args.scenarios)
    if len(os.sched_getaffinity(0)) < 2:
        print("note: fewer than 2 cores: web process and client share one")
    with tempfile.TemporaryDirectory(prefix="fanout-") as tmp:
        workdir = Path(tmp)
        events = record(args.record_seconds, workdir)
        recording = workdir / "recording.json"
        recording.write_text(json.dumps(events))
        span = events[-1]["updated_at"] - events[0]["updated_at"]
        print(f"Recorded: the small sample solved for {args.record_seconds:g} s by a real `timetabler serve`: "
              f"{len(events)} events over {span:.1f} s, replayed at that pace through JobService.publish "
              f"(the hub, then the store). Web process on core {SERVER_CORE}, client on core {CLIENT_CORE}, "
              "no solver child while measuring.\n")
        results = [(s, measure(s, recording, len(events) - 1, workdir)) for s in scenarios]
    print(HEADER)
    for scenario, result in results:
        print("| " + row(scenario, result) + " |")
    _ratios(results)


def _ratios(results: list[tuple[Scenario, dict[str, Any]]]) -> None:
    by = {(s.design, s.jobs, s.per_job): r for s, r in results}
    for (design, jobs, per_job), poll in by.items():
        ours = by.get(("ours", jobs, per_job))
        if design != "poll" or ours is None:
            continue
        for q, name in ((0.5, "p50"), (0.99, "p99")):
            ratio = pct(poll["latencies"], q) / max(pct(ours["latencies"], q), 1e-9)
            print(f"\n{jobs} x {per_job:,}: poll-loop latency {name} / ours = {ratio:.1f}x", end="")
    print()


if __name__ == "__main__":
    main()
