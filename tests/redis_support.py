"""A throwaway redis-server for the tests: on a free port, in a tmp dir, without
persistence, never the machine's shared one on 6379. It can be stopped and started again
on the same port, which is how the tests make an outage."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

START_WAIT = 10.0  # seconds redis-server may take to answer PING
STOP_WAIT = 5.0  # seconds it may take to exit on SIGTERM before it is killed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(port: int, line: bytes) -> bytes:
    """One inline command's reply (its first bytes), or b"" when nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=START_WAIT) as s:
            s.sendall(line + b"\r\n")
            return s.recv(64)
    except OSError:
        return b""


def answers_ping(port: int) -> bool:
    return command(port, b"PING").startswith(b"+PONG")


class RedisServer:
    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH")
        self.binary, self.dir, self.port = binary, tmp, free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again, on the same port) and return once it answers PING."""
        assert self._proc is None, "already running"
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.dir)]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_WAIT
        while not answers_ping(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not come up")
            time.sleep(0.01)

    def stop(self, *, keep_data: bool = False) -> None:
        """SIGTERM, then SIGKILL if it lingers. What it held is gone (no persistence), unless
        `keep_data`: then it is SAVEd first, and the next start() loads it, as a Redis
        restarted with its data does."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        if keep_data:
            assert command(self.port, b"SAVE").startswith(b"+OK")
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
