"""Web instances and solver workers sharing one Redis: real `serve --redis` and `worker`
processes, a real redis-server of the test's own, real sockets."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.redis_support import RedisServer
from tests.scale_out_support import AUTH, TOKEN, Cluster, events, free_port, submit
from tests.sse_support import WAIT


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(redis_server.url, tmp_path)
    yield made
    made.stop()


def test_subscribers_on_two_instances_see_one_sequence_and_resume_across_them(cluster: Cluster) -> None:
    a, b = cluster.web(), cluster.web()
    cluster.worker()
    cluster.worker()
    job = submit(a, time_limit=3)
    on_a, on_b = events(a, job), events(b, job)
    seqs = [e["seq"] for e in on_a]
    assert seqs == [e["seq"] for e in on_b], cluster.logs()
    assert seqs == sorted(set(seqs)) and on_a[-1]["status"] == "completed"
    middle = seqs[len(seqs) // 2]
    resumed = events(b, job, last_event_id=middle)
    assert [e["seq"] for e in resumed] == [s for s in seqs if s > middle], "exactly the missed events"
    for web in (a, b):
        timetable = httpx.get(f"{web.url}/api/jobs/{job}/timetable?format=sol", headers=AUTH, timeout=WAIT)
        assert timetable.status_code == 200 and timetable.text.strip()


def test_a_killed_worker_s_job_finishes_on_the_other_worker_as_attempt_2(cluster: Cluster) -> None:
    web = cluster.web()
    first = cluster.worker("--lease", "2")
    job = submit(web, time_limit=8)
    running = events(web, job, until_seq=3)  # the first worker has it and reports
    assert running[-1]["status"] == "running" and running[-1]["attempt"] == 1
    first.kill()  # SIGKILL: no goodbye; its solver child dies with its process group below
    cluster.worker("--lease", "2")
    rest = events(web, job, last_event_id=running[-1]["seq"])
    assert rest[-1]["status"] == "completed", cluster.logs()
    assert rest[-1]["attempt"] == 2 and any("Taken over" in e["message"] for e in rest)
    seqs = [e["seq"] for e in running + rest]
    assert seqs == sorted(set(seqs)), "one sequence, no id twice"


def test_a_worker_exports_its_metrics_and_health_and_says_when_redis_is_down(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    web = cluster.web()
    port = free_port()
    cluster.worker("--metrics-port", str(port))
    job = submit(web, time_limit=1)
    assert events(web, job)[-1]["status"] == "completed"
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=WAIT).text
    assert "timetabler_worker_claimed_total 1.0" in metrics and "timetabler_queue_length 0.0" in metrics
    assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=WAIT).json()["redis"] is True
    redis_server.stop(keep_data=True)
    down = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=WAIT)
    assert down.status_code == 503 and "Redis" in down.json()["detail"]
    web_down = httpx.get(f"{web.url}/api/health", timeout=WAIT)
    assert web_down.status_code == 503 and "Redis" in web_down.json()["detail"]
    snapshot = httpx.get(f"{web.url}/api/jobs/{job}", headers=AUTH, timeout=WAIT)
    assert snapshot.status_code == 503 and set(snapshot.json()) == {"error", "detail"}
    stream = httpx.get(f"{web.url}/api/jobs/{job}/events", headers=AUTH, timeout=WAIT)
    assert stream.status_code == 200 and stream.text.startswith("retry: "), "the browser is asked to come back"
    redis_server.start()
    assert events(web, job)[-1]["status"] == "completed", "and it finds everything when it does"


def test_a_session_opened_on_one_instance_works_on_another(cluster: Cluster) -> None:
    a, b = cluster.web(), cluster.web()
    login = httpx.post(f"{a.url}/api/session", json={"token": TOKEN}, timeout=WAIT)
    assert login.status_code == 200, login.text
    cookies = login.cookies
    mine = httpx.get(f"{b.url}/api/jobs", cookies=cookies, timeout=WAIT)
    assert mine.status_code == 200, "B knows A's session: the secret and the sessions are shared"
    httpx.delete(f"{b.url}/api/session", cookies=cookies, headers={"Origin": b.url}, timeout=WAIT)
    assert httpx.get(f"{a.url}/api/jobs", cookies=cookies, timeout=WAIT).status_code == 401, "logged out everywhere"


def test_jobs_waiting_in_line_are_told_their_place_as_it_moves_up(cluster: Cluster) -> None:
    web = cluster.web("--max-active-jobs", "5")
    cluster.worker()
    first = submit(web, time_limit=60)
    events(web, first, until_seq=2)  # running: the worker's only slot is taken
    second, third, fourth = submit(web, time_limit=1), submit(web, time_limit=1), submit(web, time_limit=1)
    assert httpx.delete(f"{web.url}/api/jobs/{second}", headers=AUTH, timeout=WAIT).json()["status"] == "cancelled"
    told = events(web, third, until_seq=2)
    assert [e["queue_position"] for e in told] == [2, 1], "told its place at once, then as a cancel moved the line"
    assert told[-1]["message"] == "Waiting for a free solver (number 1 in line)"
    assert [e["queue_position"] for e in events(web, fourth, until_seq=2)] == [3, 2]
    httpx.delete(f"{web.url}/api/jobs/{first}", headers=AUTH, timeout=WAIT)
    rest = events(web, third, last_event_id=2)
    assert rest[0]["status"] == "running" and rest[-1]["status"] == "completed", cluster.logs()
    assert [e["queue_position"] for e in events(web, fourth, until_seq=3)] == [3, 2, 1], "a claim moved it up too"
