"""Fixtures shared by the test files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from solver import kernel
from solver.ctt import parse_ctt
from solver.model import Instance

# The benchmark data sits next to the repository, here and in CI.
CTT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "ctt"

# 3 courses, 2 rooms, 2 days x 2 periods: small enough to reason about by hand.
TINY_CTT = """\
Name: tiny
Courses: 3
Rooms: 2
Days: 2
Periods_per_day: 2
Curricula: 1
Constraints: 1

COURSES:
c1 t1 2 2 30
c2 t2 2 1 10
c3 t1 1 1 35

ROOMS:
rA 40
rB 20

CURRICULA:
q1 2 c1 c2

UNAVAILABILITY_CONSTRAINTS:
c3 0 0

END.
"""


@pytest.fixture
def ctt_dir() -> Path:
    return CTT_DIR


@pytest.fixture
def tiny_instance() -> Instance:
    return parse_ctt(TINY_CTT, "tiny.ctt")


def live_children() -> list[str]:
    """Command lines of this process's live children, read from /proc (no psutil)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # The resource tracker lives as long as the interpreter by design; it is not a job.
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and "resource_tracker" not in cmdline:
            found.append(cmdline)
    return found


@pytest.fixture(scope="session", autouse=True)
def compiled_kernel() -> None:
    """Compile the search kernel once, up front (a fresh clone has no disk cache): tests
    with short budgets and stop deadlines must not pay for it in the middle."""
    kernel.warm_up()


@pytest.fixture(scope="session", autouse=True)
def no_orphans_after_the_session() -> Iterator[None]:
    """Solver children, services and browsers started by any test are all gone at the end."""
    yield
    assert live_children() == []


from tests.redis_support import RedisServer  # noqa: E402  (appended with its fixture)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (tests/redis_support.py), always gone at the end."""
    server = RedisServer(tmp_path / "redis")
    server.dir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()
