"""Real `serve --redis` and `worker` processes for the scale-out tests, and a reader of
their event streams over real sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.sse_support import WAIT

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "scale-out-test-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    """One `timetabler` process; its output goes to a log file shown when a test fails."""

    args: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int | None = None

    def start(self) -> Process:
        out = open(self.log, "ab")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen([sys.executable, "-m", "app", *self.args], cwd=ROOT, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + WAIT * 3
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, f"exited: {self.log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # a starting process: nothing to wait on but its port
        raise AssertionError(f"no health in time: {self.log.read_text()[-2000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(WAIT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@dataclass
class Cluster:
    """Web instances and workers sharing one redis-server."""

    redis_url: str
    tmp: Path
    processes: list[Process] = field(default_factory=list)

    def web(self, *extra: str) -> Process:
        n = len(self.processes)
        tokens = self.tmp / "tokens.txt"
        tokens.write_text(f"{TOKEN} alice admin\n")
        port = free_port()
        process = Process(["serve", "--redis", self.redis_url, "--port", str(port), "--data-dir",
                           str(self.tmp / f"web{n}"), "--tokens", str(tokens), "--heartbeat", "1", *extra],
                          self.tmp / f"web{n}.log", port=port)
        self.processes.append(process.start())
        process.wait_healthy()
        return process

    def worker(self, *extra: str) -> Process:
        n = len(self.processes)
        process = Process(["worker", "--redis", self.redis_url, "--slots", "1", *extra], self.tmp / f"worker{n}.log")
        self.processes.append(process.start())
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.log.read_text()[-3000:]}" for p in self.processes if p.log.exists())


def submit(web: Process, **body: Any) -> str:
    answer = httpx.post(f"{web.url}/api/jobs", json={"sample": "small", **body}, headers=AUTH, timeout=WAIT)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def events(web: Process, job_id: str, last_event_id: int | None = None, until_seq: int | None = None) -> list[dict[str, Any]]:
    """The stream's progress events until `done` (or until seq `until_seq`, then it leaves)."""
    headers = {**AUTH, **({"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {})}
    got: list[dict[str, Any]] = []
    name = None
    with httpx.stream("GET", f"{web.url}/api/jobs/{job_id}/events", headers=headers, timeout=WAIT * 6) as answer:
        for line in answer.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name in ("progress", "snapshot"):
                got.append(json.loads(line[6:]))
                if until_seq is not None and got[-1]["seq"] >= until_seq:
                    return got
            elif line.startswith("data: ") and name == "done":
                return got
    return got
