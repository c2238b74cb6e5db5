"""The scale-out under faults, with real `serve --redis` and `worker` processes, a real
redis-server of the test's own and real sockets: a killed solver child, a killed worker
(no orphan, taken over), Redis restarted under a live stream, a cancel asked on another
instance, a frozen worker whose late writes are refused, and quotas counted across instances."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from redis import Redis

from app.storage import redis_keys as keys
from tests.fault_support import Stream, alive, solver_child, still_running, wait_for
from tests.redis_support import RedisServer, command
from tests.scale_out_support import AUTH, Cluster, Process, events, submit
from tests.sse_support import WAIT

CANCEL_LATENCY = 1.0  # seconds from a DELETE on one instance to `cancelled` on another's stream
ORPHAN_WAIT = 5.0  # seconds a solver child may outlive its killed or stopped worker


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(redis_server.url, tmp_path)
    yield made
    made.stop()


def job(web: Process, job_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{web.url}/api/jobs/{job_id}", headers=AUTH, timeout=WAIT)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def sol(web: Process, job_id: str) -> httpx.Response:
    return httpx.get(f"{web.url}/api/jobs/{job_id}/timetable?format=sol", headers=AUTH, timeout=WAIT)


def ended_job(web: Process, job_id: str) -> dict[str, Any] | None:
    found = job(web, job_id)
    return found if found["status"] in ("completed", "failed", "cancelled") else None


def running(stream: Stream, attempt: int = 1, placed: bool = False) -> bool:
    """The stream has shown the job running (as `attempt`; with a best timetable so far)."""
    return any(e["status"] == "running" and e["attempt"] == attempt and (not placed or e.get("best"))
               for e in stream.got())


def increasing(seqs: list[int]) -> bool:
    return all(a < b for a, b in zip(seqs, seqs[1:]))


def test_a_killed_solver_child_fails_its_job_readably_and_the_worker_goes_on(cluster: Cluster) -> None:
    web = cluster.web()
    worker = cluster.worker()
    first = submit(web, time_limit=8)
    with Stream(web, first) as stream:
        wait_for("the job running", lambda: running(stream), explain=cluster.logs)
        os.kill(solver_child(worker, cluster.logs), signal.SIGKILL)
        wait_for("the job's end", stream.done.is_set, explain=cluster.logs)
    end = stream.got()[-1]
    assert end["status"] == "failed", cluster.logs()
    assert end["error"] == "The solver process was killed by SIGKILL (possibly out of memory).", end
    assert job(web, first)["status"] == "failed"
    listed = httpx.get(f"{web.url}/api/jobs", headers=AUTH, timeout=WAIT).json()["jobs"]
    assert [j["status"] for j in listed] == ["failed"], "nothing stays running"
    second = submit(web, time_limit=1)
    assert events(web, second)[-1]["status"] == "completed", cluster.logs()
    assert still_running(web, worker)


def test_a_killed_worker_leaves_no_solver_child_and_its_job_completes_as_attempt_2(cluster: Cluster) -> None:
    web = cluster.web()
    first = cluster.worker("--lease", "2")
    job_id = submit(web, time_limit=6)
    with Stream(web, job_id) as stream:
        wait_for("the job running", lambda: running(stream), explain=cluster.logs)
        child = solver_child(first, cluster.logs)
        first.kill()  # SIGKILL to the worker alone, not its process group
        wait_for(f"solver child {child} gone after its worker was killed", lambda: not alive(child),
                 timeout=ORPHAN_WAIT, explain=cluster.logs)
        cluster.worker("--lease", "2")
        wait_for("the job's end", stream.done.is_set, timeout=WAIT * 2, explain=cluster.logs)
    end = stream.got()[-1]
    assert end["status"] == "completed" and end["attempt"] == 2, cluster.logs()
    assert increasing(stream.seqs())


def test_a_redis_restart_mid_stream_loses_no_event_and_the_job_completes(
        cluster: Cluster, redis_server: RedisServer) -> None:
    web = cluster.web()
    worker = cluster.worker()
    job_id = submit(web, time_limit=8)
    with Stream(web, job_id) as stream:
        wait_for("the job running", lambda: running(stream), explain=cluster.logs)
        before = len(stream.got())
        redis_server.stop(keep_data=True)
        stopped = time.monotonic()

        def down() -> httpx.Response | None:
            answer = httpx.get(f"{web.url}/api/health", timeout=WAIT)
            return answer if answer.status_code == 503 else None

        health = wait_for("health saying 503", down, explain=cluster.logs)
        assert "Redis" in health.json()["detail"], health.text
        # The worker's writes meet the outage (and are kept), and it lasts a while: the
        # stream's reader backs off, the claim's renewal fails.
        wait_for("the worker's store meeting the outage",
                 lambda: "store: Redis at" in worker.log.read_text(), explain=cluster.logs)
        wait_for("a two-second outage", lambda: time.monotonic() - stopped > 2.0)
        # A subscriber arriving while Redis is away is asked to come back (200 and `retry`),
        # as a browser would be, not turned away for good.
        # So is one coming back with Last-Event-ID (a browser whose connection broke meanwhile).
        seen = stream.seqs()[-1]
        with Stream(web, job_id) as late, Stream(web, job_id, last_event_id=seen) as resumed:
            for subscriber in (late, resumed):
                wait_for("a subscriber's first try", lambda: subscriber.connects or subscriber.refused,
                         explain=cluster.logs)
            redis_server.start()
            for subscriber in (stream, late, resumed):
                wait_for("the job's end", subscriber.done.is_set, timeout=WAIT * 2, explain=cluster.logs)
    got = stream.seqs()
    assert len(got) > before and increasing(got), got
    assert stream.got()[-1]["status"] == "completed", cluster.logs()
    logged = [e["seq"] for e in events(web, job_id)]  # the whole log, as stored
    # Redis restarted with what it had saved: what it took after the save and before it
    # stopped is gone for everyone; nothing still in the log is missed.
    assert [s for s in got if s >= logged[0]] == logged, "no seq still in the log is missing"
    assert late.refused is None and late.connects >= 2, (late.refused, late.connects)
    assert late.seqs() == logged, "the late subscriber got the whole log once Redis was back"
    assert resumed.refused is None and resumed.seqs() == [s for s in logged if s > seen], "exactly the rest"
    assert still_running(web, worker), cluster.logs()
    assert httpx.get(f"{web.url}/api/health", timeout=WAIT).status_code == 200
    timetable = sol(web, job_id)
    assert timetable.status_code == 200 and timetable.text.strip()


def test_a_cancel_on_one_instance_ends_the_job_on_another_within_a_second(
        cluster: Cluster, redis_server: RedisServer) -> None:
    a, b = cluster.web(), cluster.web()
    worker = cluster.worker()
    busy = submit(a, time_limit=10)
    with Stream(b, busy) as stream:
        wait_for("the job running with a timetable", lambda: running(stream, placed=True), explain=cluster.logs)
        # The only slot is taken: a second job waits in the queue; cancelled on the other instance.
        queued = submit(a, time_limit=10)
        answer = httpx.delete(f"{b.url}/api/jobs/{queued}", headers=AUTH, timeout=WAIT)
        assert answer.status_code == 202 and answer.json()["status"] == "cancelled", answer.text
        assert job(a, queued)["status"] == "cancelled" and job(b, queued)["status"] == "cancelled"
        asked = time.monotonic()
        answer = httpx.delete(f"{a.url}/api/jobs/{busy}", headers=AUTH, timeout=WAIT)
        assert answer.status_code == 202 and answer.json()["status"] == "stopping", answer.text
        wait_for("the cancelled event", stream.done.is_set, explain=cluster.logs)
    end = stream.got()[-1]
    assert end["status"] == "cancelled", cluster.logs()
    assert end["_at"] - asked < CANCEL_LATENCY, f"cancelled {end['_at'] - asked:.2f} s after the DELETE"
    for web in (a, b):
        timetable = sol(web, busy)
        assert timetable.status_code == 200 and timetable.text.strip(), timetable.text
    # The queued job never ran: out of the queue, and no worker ever reported it.
    assert not Redis.from_url(redis_server.url).hexists(keys.QUEUE_ENTRIES, queued)
    assert all(e["status"] != "running" for e in events(a, queued))
    assert queued not in worker.log.read_text()


def test_a_frozen_worker_s_late_writes_are_refused_after_the_takeover(
        cluster: Cluster, redis_server: RedisServer) -> None:
    web = cluster.web()
    frozen = cluster.worker("--lease", "2")
    job_id = submit(web, time_limit=6)
    with Stream(web, job_id) as stream:
        wait_for("the job running", lambda: running(stream), explain=cluster.logs)
        cluster.worker("--lease", "2")
        child = solver_child(frozen, cluster.logs)
        assert frozen.proc is not None
        frozen.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for("the takeover (attempt 2)", lambda: running(stream, attempt=2), explain=cluster.logs)
        finally:
            frozen.proc.send_signal(signal.SIGCONT)
        wait_for("the frozen worker noticing it lost the job",
                 lambda: "taken over by another worker" in frozen.log.read_text(), explain=cluster.logs)
        wait_for(f"the frozen worker's solver child {child} gone", lambda: not alive(child), timeout=ORPHAN_WAIT,
                 explain=cluster.logs)
        wait_for("the job's end", stream.done.is_set, timeout=WAIT * 2, explain=cluster.logs)
    got = stream.got()
    takeover = next(i for i, e in enumerate(got) if e["attempt"] == 2)
    assert "Taken over" in got[takeover]["message"]
    assert all(e["attempt"] == 2 for e in got[takeover:]), [(e["seq"], e["attempt"]) for e in got[takeover:]]
    assert increasing([e["seq"] for e in got])
    assert got[-1]["status"] == "completed" and got[-1]["attempt"] == 2, cluster.logs()
    snapshot = job(web, job_id)
    assert snapshot["status"] == "completed" and snapshot["attempt"] == 2 and snapshot["result"] is not None
    assert Redis.from_url(redis_server.url, decode_responses=True).hget(keys.result_key(job_id), "attempt") == "2"
    assert still_running(frozen), "the stale worker stops the run, not itself"


def test_the_active_job_quota_is_counted_across_instances(cluster: Cluster) -> None:
    a, b = cluster.web("--max-active-jobs", "2"), cluster.web("--max-active-jobs", "2")
    submit(a, time_limit=5)
    submit(a, time_limit=5)  # no worker: both stay queued, so both stay active
    answer = httpx.post(f"{b.url}/api/jobs", json={"sample": "small", "time_limit": 5}, headers=AUTH, timeout=WAIT)
    assert answer.status_code == 429, answer.text
    assert answer.json()["error"] == "too_many_jobs"


def test_a_claim_lost_with_a_redis_restart_from_an_older_save_runs_the_job_again(
        cluster: Cluster, redis_server: RedisServer) -> None:
    """Redis comes back from a save made while the job was still queued: its claim is gone
    though nobody took it over. The worker stops that run without ending the job (no
    `cancelled` nobody asked for) and runs it again from the queue."""
    web = cluster.web()
    job_id = submit(web, time_limit=4)
    assert command(redis_server.port, b"SAVE").startswith(b"+OK")  # the job queued, unclaimed
    worker = cluster.worker("--lease", "2")
    with Stream(web, job_id) as stream:
        wait_for("the job running", lambda: running(stream), explain=cluster.logs)
    redis_server.stop()  # no new save: it comes back from the one above
    redis_server.start()
    wait_for("the worker noticing its claim is gone", lambda: "claim lost" in worker.log.read_text(),
             explain=cluster.logs)
    ended = wait_for("the job's end", lambda: ended_job(web, job_id), timeout=WAIT * 2, explain=cluster.logs)
    assert ended["status"] == "completed" and ended["result"] is not None, (ended, cluster.logs())
    timetable = sol(web, job_id)
    assert timetable.status_code == 200 and timetable.text.strip()
    assert still_running(web, worker)
