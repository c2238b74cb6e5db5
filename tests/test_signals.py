"""Signals as a terminal and a service manager send them, to real process groups: the
solver child leaves every decision to its parent and never prints a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from solver.ctt import format_ctt
from solver.generate import generate
from tests.browser_support import ROOT, Service, wait_until

WAIT = 60.0


@contextmanager
def _solving(tmp_path: Path, seconds: int) -> Iterator[subprocess.Popen[str]]:
    """`timetabler solve` in its own process group, as a shell runs a foreground job;
    whatever is left of the group is killed at the end."""
    ctt = tmp_path / "demo.ctt"
    ctt.write_text(format_ctt(generate(courses=30, rooms=6, curricula=10, seed=4)), encoding="utf-8")
    command = [sys.executable, "-m", "app", "solve", str(ctt), "--time", str(seconds), "--out", str(tmp_path / "demo.sol")]
    solve = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        yield solve
    finally:
        try:
            os.killpg(solve.pid, signal.SIGKILL)
        except ProcessLookupError:  # the whole group is gone already
            pass
        solve.wait()
        for pipe in (solve.stdout, solve.stderr):
            if pipe is not None:
                pipe.close()


def _wait_for_stage(solve: subprocess.Popen[str], stage: str) -> list[str]:
    """stderr lines up to the progress line (one per stage off a terminal) naming `stage`."""
    assert solve.stderr is not None
    lines = []
    for line in solve.stderr:
        lines.append(line)
        if stage in line:
            return lines
    raise AssertionError(f"solve ended before {stage}: {''.join(lines)}")


def test_ctrl_c_stops_solve_quietly_and_keeps_the_best_timetable(tmp_path: Path) -> None:
    with _solving(tmp_path, 60) as solve:
        seen = _wait_for_stage(solve, "cpsat_solving")
        asked = time.monotonic()
        os.killpg(solve.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        out, err = solve.communicate(timeout=WAIT)
    err = "".join(seen) + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # 0, or 3 when stopped before every lecture had a place: either way the best so far is written.
    assert solve.returncode in (0, 3) and "cancelled: wrote" in out, (out, err)
    assert time.monotonic() - asked < 10 and (tmp_path / "demo.sol").exists()


def test_a_child_whose_parent_dies_leaves_without_a_traceback(tmp_path: Path) -> None:
    with _solving(tmp_path, 60) as solve:
        seen = _wait_for_stage(solve, "cpsat_solving")
        solve.kill()  # the parent only, at once; its child is still solving and writing to the pipe
        assert solve.stderr is not None
        rest = solve.stderr.read()  # EOF: every process holding the stderr pipe (the child too) is gone
    err = "".join(seen) + rest
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_ctrl_c_on_serve_leaves_a_running_job_to_run_again(tmp_path: Path) -> None:
    service = Service(tmp_path / "data")
    service.data_dir.mkdir()
    service.start()
    try:
        job = service.api("POST", "/api/jobs", json={"sample": "medium", "time_limit": 60}).json()["id"]
        wait_until(lambda: service.api("GET", f"/api/jobs/{job}").json()["status"] == "running", WAIT, "the job to run")
        service.stop(signal.SIGINT)  # Ctrl-C in the terminal running `timetabler serve`
        log = service.log_tail()
        assert service.process is not None and service.process.returncode == 0, log
        assert "Traceback" not in log and "KeyboardInterrupt" not in log, log

        service.start()
        snap = service.api("GET", f"/api/jobs/{job}").json()
        assert snap["status"] in ("queued", "running") and snap["attempt"] == 2, snap
        assert "failed" not in [e["status"] for e in _events(service, job)]
        service.api("DELETE", f"/api/jobs/{job}")
    finally:
        service.stop()


def _events(service: Service, job_id: str) -> list[dict[str, object]]:
    """The job's stored events so far, from its stream (read until the log is replayed)."""
    events = []
    headers = {"Authorization": f"Bearer {service.admin_token}", "Last-Event-ID": "0"}
    with httpx.stream("GET", f"{service.url}/api/jobs/{job_id}/events", headers=headers, timeout=10) as resp:
        for line in resp.iter_lines():
            if line.startswith("data:") and '"seq"' in line:
                events.append(json.loads(line[5:]))
                if events[-1]["attempt"] == 2:  # the log up to the restart is in
                    break
    return events
