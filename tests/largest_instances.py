"""The largest instances the service accepts, and how long the work on them holds a thread.

`python -m tests.largest_instances` prints, for each shape, the body size and the seconds
spent parsing, checking (the conflict matrix and the pre-solve check), clustering (the
solver's tie-weight product) and rendering the JSON timetable view. The shapes push the
limits of app/web/instance_limits.py to their bounds, within the default 5 MB body.

`python -m tests.largest_instances --lag` starts a real `serve` process instead and prints
the slowest /api/health answer (probed back to back from another thread) while each shape
is submitted, against the same probe with nothing else going on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable

import httpx

from app.web import instance_limits as lim
from app.web.timetable_view import as_csv, as_json
from solver.check import check
from solver.cluster import cluster_courses
from solver.ctt import format_ctt, parse_ctt
from solver.evaluate import evaluate
from solver.model import Course, Curriculum, Instance, Room
from solver.timetable import Timetable
from tests.browser_support import ROOT, free_port, wait_until

MAX_BODY = 5 * 1024 * 1024
DAYS, PERIODS_PER_DAY = 5, 8  # the bench's week; the limits do not depend on it
CLUSTER_LECTURES = 60  # solver.pipeline's cluster size


@dataclass(frozen=True)
class Shape:
    name: str
    courses: int
    rooms: int
    curricula: int
    per_curriculum: int  # courses in each curriculum
    lectures: int  # in all, spread evenly over the courses


def build(shape: Shape) -> Instance:
    """Courses with a teacher each (every 4th teacher shared), curricula over a sliding window of courses."""
    each, extra = divmod(shape.lectures, shape.courses)
    courses = tuple(Course(f"c{i:05d}", f"t{i // 4:05d}", each + (i < extra), 1, 30) for i in range(shape.courses))
    rooms = tuple(Room(f"r{i:04d}", 40) for i in range(shape.rooms))
    step = max(1, shape.courses // max(1, shape.curricula))
    curricula = tuple(
        Curriculum(f"q{q:05d}", tuple(courses[(q * step + k) % shape.courses].id for k in range(shape.per_curriculum)))
        for q in range(shape.curricula)
    )
    return Instance(f"largest-{shape.name}", DAYS, PERIODS_PER_DAY, courses, rooms, curricula, ())


def round_robin(instance: Instance) -> Timetable:
    """Every lecture placed, periods and rooms dealt in turn: a timetable with clashes to list."""
    n, periods, rooms = instance.index.n_lectures, instance.periods, len(instance.rooms)
    return Timetable.from_arrays(instance, [l % periods for l in range(n)], [(l // periods) % rooms for l in range(n)])


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def shapes() -> tuple[Shape, ...]:
    """Each pushes limits to their bounds together; the curricula's courses overlap."""
    return (
        Shape("most-courses", lim.MAX_COURSES, lim.MAX_ROOMS, lim.MAX_CURRICULA, 4, lim.MAX_LECTURES),
        Shape("most-curricula", lim.MAX_COURSES, lim.MAX_ROOMS, lim.MAX_CURRICULA, lim.MAX_MEMBERSHIPS // lim.MAX_CURRICULA,
              lim.MAX_LECTURES),
        Shape("widest-curricula", lim.MAX_COURSES, lim.MAX_ROOMS, lim.MAX_MEMBERSHIPS // lim.MAX_CURRICULUM_COURSES,
              lim.MAX_CURRICULUM_COURSES, lim.MAX_LECTURES),
    )


def measure(shape: Shape) -> dict[str, float]:
    instance = build(shape)
    text = format_ctt(instance)
    figures = {"body MB": len(text.encode()) / 2**20}
    figures["parse s"] = timed(lambda: parse_ctt(text))
    fresh = parse_ctt(text)
    figures["limits s"] = timed(lambda: lim.refuse_oversized(fresh))
    figures["conflict matrix s"] = timed(lambda: fresh.index)
    figures["pre-solve check s"] = timed(lambda: check(fresh, time_limit=60))
    figures["clustering s"] = timed(lambda: cluster_courses(fresh, max_lectures=CLUSTER_LECTURES, seed=0))
    timetable = round_robin(fresh)
    cost = evaluate(timetable)
    figures["JSON view s"] = timed(lambda: as_json("x", "completed", timetable, cost))
    figures["CSV view s"] = timed(lambda: as_csv(timetable, cost))
    return figures


def health_lag(url: str, during: Callable[[], object]) -> float:
    """The slowest /api/health answer, probed back to back while `during()` runs."""
    done, slowest = threading.Event(), [0.0]

    def probe() -> None:
        with httpx.Client(timeout=30) as client:
            while not done.is_set():
                slowest[0] = max(slowest[0], timed(lambda: client.get(f"{url}/api/health")))

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        during()
    finally:
        done.set()
        prober.join()
    return slowest[0]


def lag() -> None:
    token = "largest-instances-admin-token"
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        command = [sys.executable, "-m", "app", "serve", "--port", str(port), "--data-dir", tmp, "--slots", "1",
                   "--max-active-jobs", "100"]
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "TIMETABLER_ADMIN_TOKEN": token},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
        accepted: list[str] = []
        try:
            wait_until(lambda: _answers(url), 30, "the service")
            print(f"| idle | slowest /api/health {health_lag(url, lambda: time.sleep(2)):.3f} s |", flush=True)
            # The first accepted job starts in the one slot; later ones queue behind it.
            for shape in (*shapes(), shapes()[0]):
                body = format_ctt(build(shape)).encode()
                answers: list[httpx.Response] = []

                def submit() -> None:
                    answers.append(httpx.post(f"{url}/api/jobs", content=body, timeout=120, params={"time_limit": "60"},
                                              headers={**auth, "Content-Type": "text/plain"}))

                slowest = health_lag(url, submit)
                print(f"| submit {shape.name} | {answers[0].status_code} in {answers[0].elapsed.total_seconds():.3f} s "
                      f"| slowest /api/health meanwhile {slowest:.3f} s |", flush=True)
                if answers[0].status_code == 202:
                    accepted.append(answers[0].json()["id"])
            listed = health_lag(url, lambda: [httpx.get(f"{url}/api/jobs", params={"limit": "100"}, headers=auth, timeout=30)
                                              for _ in range(20)])
            for job_id in accepted:
                httpx.delete(f"{url}/api/jobs/{job_id}", headers=auth, timeout=30)
            print(f"| list jobs 20 times | slowest /api/health meanwhile {listed:.3f} s |", flush=True)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> None:
    if sys.argv[1:] == ["--lag"]:
        return lag()
    names = set(sys.argv[1:])
    for shape in shapes():
        if names and shape.name not in names:
            continue
        figures = measure(shape)
        assert figures["body MB"] * 2**20 <= MAX_BODY, f"{shape.name} does not fit the default body limit"
        shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
        print(f"| {shape.name} | {shape.courses} courses, {shape.rooms} rooms, {shape.curricula} curricula of "
              f"{shape.per_curriculum}, {shape.lectures} lectures | {shown} |", flush=True)


if __name__ == "__main__":
    main()
