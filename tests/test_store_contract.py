"""The Store contract, run against both backends: SQLite in a tmp dir, and a redis-server of
the test's own. Then what only RedisStore promises: attempts fenced, and an outage that
keeps the writes and lands them once Redis is back."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator

import pytest

from app.storage.redis_store import RedisStore
from app.storage.sqlite_store import SqliteStore
from app.storage.store import JobHead, SessionRecord, StaleWrite, Store, StoreUnavailable
from saga.events import COMPLETED, QUEUED, RUNNING
from solver.evaluate import evaluate
from tests.redis_support import RedisServer
from tests.store_support import event, job, outcome, until

KEEP = 5  # events a log keeps (Redis: at least that many)
MANY = 300  # events enough for Redis's approximate trimming to drop whole nodes


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        s: SqliteStore | RedisStore = SqliteStore(tmp_path / "db.sqlite3", keep_events=KEEP)
    else:
        s = RedisStore.from_url(request.getfixturevalue("redis_server").url, keep_events=KEEP)
    await s.connect()
    yield s
    await s.close()


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(redis_server.url, keep_events=KEEP)
    await s.connect()
    yield s
    await s.close()


async def test_job_round_trip_and_listing(store: Store) -> None:
    await store.create_job(job("a", created_at=1.0))
    await store.create_job(job("b", owner="bob", created_at=2.0))
    await store.create_job(job("c", created_at=3.0))
    warned = replace(job("w", created_at=0.5), warnings=("Room D has capacity 0.", "Course x asks for 9 days."))
    await store.create_job(warned)
    assert await store.get_job("a") == job("a", created_at=1.0)
    assert await store.get_job("w") == warned and (await store.get_job("a")).warnings == ()
    assert await store.get_job("zzz") is None
    mine, total = await store.list_jobs("alice", limit=10, offset=0)
    assert [j.id for j in mine] == ["c", "a", "w"] and total == 3 and mine[2] == warned
    everyone, total = await store.list_jobs(None, limit=2, offset=1)
    assert [j.id for j in everyone] == ["b", "a"] and total == 4
    assert await store.list_jobs("carol", limit=10, offset=0) == ([], 0)


async def test_job_head_follows_the_events(store: Store) -> None:
    assert await store.job_head("a") is None
    await store.create_job(job("a"))
    assert await store.job_head("a") == JobHead("a", "alice", QUEUED, 0)
    await store.append_event(event("a", 1))
    assert await store.job_head("a") == JobHead("a", "alice", RUNNING, 1)


async def test_events_move_the_job_and_the_log_is_bounded(store: Store) -> None:
    await store.create_job(job("a"))
    for seq in range(1, MANY + 1):
        await store.append_event(event("a", seq))
    record = await store.get_job("a")
    assert (record.status, record.last_seq) == (RUNNING, MANY)
    assert await store.latest_event("a") == event("a", MANY)
    assert await store.events_after("a", MANY) == []
    assert [e.event() for e in await store.events_after("a", MANY - 1)] == [event("a", MANY)]
    assert await store.events_after("a", 0) is None  # seq 1 is long gone
    # What the log still holds: from some seq on, every event, ids strictly increasing; None before it.
    kept_from = 0
    while await store.events_after("a", kept_from) is None:
        kept_from += 1
    assert await store.events_after("a", kept_from - 1) is None
    held = await store.events_after("a", kept_from)
    assert [e.seq for e in held] == list(range(kept_from + 1, MANY + 1)) and len(held) >= KEEP
    assert all(e.event() == event("a", e.seq) and not e.terminal for e in held)
    assert await store.latest_event("nope") is None and await store.events_after("nope", 0) == []


async def test_result_round_trip_rebuilds_the_timetable(store: Store) -> None:
    await store.create_job(job("a"))
    assert await store.get_result("a") is None and await store.get_result_summary("a") is None
    saved = outcome("a")
    await store.save_result(saved)
    got = await store.get_result("a")
    assert got is not None and (got.status, got.cost, got.stage_costs) == (COMPLETED, saved.cost, saved.stage_costs)
    assert (got.timetable.period, got.timetable.room) == (saved.timetable.period, saved.timetable.room)
    assert evaluate(got.timetable) == saved.cost
    summary = await store.get_result_summary("a")
    assert (summary.status, summary.cost, summary.lectures) == (COMPLETED, saved.cost, len(saved.timetable.period))
    assert summary.unplaced == len(saved.timetable.unplaced)
    assert await store.get_result("b") is None


async def test_sessions_put_get_touch_delete_prune(store: Store) -> None:
    t = time.time() - 1000  # recent: RedisStore lets a session's hash expire at the end of its lifetime
    old, idle, revoked, fresh = (
        SessionRecord("k-old", "alice", "fp1", t + 10, t + 500),
        SessionRecord("k-idle", "alice", "fp1", t + 200, t + 210),
        SessionRecord("k-revoked", "bob", "fp-gone", t + 300, t + 900),
        SessionRecord("k-fresh", "bob", "fp2", t + 400, t + 400),
    )
    for s in (old, idle, revoked, fresh):
        await store.put_session(s)
    assert await store.get_session("k-fresh") == fresh and await store.get_session("nope") is None
    await store.touch_session("k-fresh", t + 950.5)
    await store.touch_session("k-fresh", t + 900)  # never back in time
    assert await store.get_session("k-fresh") == replace(fresh, seen_at=t + 950.5)
    await store.touch_session("nope", t)  # touching no session makes none
    assert await store.get_session("nope") is None
    gone = await store.prune_sessions(seen_before=t + 300, created_before=t + 100, token_fps=frozenset({"fp1", "fp2"}))
    assert gone == 3
    assert [await store.get_session(k) for k in ("k-old", "k-idle", "k-revoked")] == [None, None, None]
    await store.delete_session("k-fresh")
    assert await store.get_session("k-fresh") is None
    assert await store.prune_sessions(0.0, 0.0, frozenset()) == 0


async def test_unfinished_jobs_are_the_queued_and_running(store: Store) -> None:
    for job_id, created in (("done", 1.0), ("busy", 2.0), ("waiting", 3.0)):
        await store.create_job(job(job_id, created_at=created))
    await store.append_event(event("done", 1, COMPLETED))
    await store.append_event(event("busy", 1, RUNNING))
    assert [j.id for j in await store.unfinished_jobs()] == ["busy", "waiting"]
    assert await store.ping() and await store.write_problem() is None


# RedisStore only


async def test_a_replaced_attempt_can_neither_log_nor_save(redis_store: RedisStore) -> None:
    await redis_store.create_job(job("a"))
    await redis_store.append_event(event("a", 1, attempt=1))
    await redis_store.append_event(event("a", 2, attempt=2))  # a restart took the job over
    with pytest.raises(StaleWrite):
        await redis_store.append_event(event("a", 3, attempt=1))  # the old run, still going
    with pytest.raises(StaleWrite):
        await redis_store.append_event(event("a", 2, attempt=2))  # not after the log's last seq
    with pytest.raises(StaleWrite):
        await redis_store.save_result(outcome("a", attempt=1))
    assert (await redis_store.get_job("a")).last_seq == 2 and await redis_store.get_result("a") is None
    assert [e.seq for e in await redis_store.events_after("a", 0)] == [1, 2]
    await redis_store.save_result(outcome("a", attempt=2))
    assert (await redis_store.get_result("a")).attempt == 2
    await redis_store.append_event(event("a", 3, COMPLETED, attempt=2))
    with pytest.raises(StaleWrite, match="ended"):
        await redis_store.append_event(event("a", 4, attempt=2))  # nothing reopens an ended job
    assert (await redis_store.get_job("a")).status == COMPLETED


async def test_an_outage_keeps_the_writes_and_lands_them_when_redis_is_back(
    redis_store: RedisStore, redis_server: RedisServer
) -> None:
    await redis_store.create_job(job("a"))
    await redis_store.append_event(event("a", 1))
    redis_server.stop(keep_data=True)

    with pytest.raises(StoreUnavailable) as refused:
        await redis_store.append_event(event("a", 2))
    assert "unreachable" in refused.value.reason
    with pytest.raises(StoreUnavailable):
        await redis_store.save_result(outcome("a"))
    # This process still shows what it kept; what only Redis holds is a 503 meanwhile.
    assert await redis_store.latest_event("a") == event("a", 2)
    assert (await redis_store.get_result("a")).cost == outcome("a").cost
    with pytest.raises(StoreUnavailable):
        await redis_store.get_job("a")
    assert f"Redis at 127.0.0.1:{redis_server.port} is unreachable" in await redis_store.write_problem()
    assert not await redis_store.ping()

    redis_server.start()  # same port, with its data
    other = RedisStore.from_url(redis_server.url)  # another instance: it sees only what Redis holds
    try:

        async def landed() -> bool:
            return await other.get_result_summary("a") is not None and (await other.get_job("a")).last_seq == 2

        await until(landed, "the kept writes to land")  # the retry task's doing: nothing else writes
        assert [e.event() for e in await other.events_after("a", 0)] == [event("a", 1), event("a", 2)]
        assert (await other.get_result("a")).cost == outcome("a").cost
        assert await redis_store.write_problem() is None
    finally:
        await other.close()


async def test_retention_cuts_ended_logs_to_their_last_event_then_deletes_old_jobs(store: Store) -> None:
    for job_id in ("ended", "running"):
        await store.create_job(job(job_id))
        for seq in (1, 2, 3):
            await store.append_event(event(job_id, seq))
    await store.save_result(outcome("ended"))
    await store.append_event(event("ended", 4, COMPLETED))
    before = time.time() - 60
    assert await store.prune(before, before) == (0, 0), "nothing ended that long ago"
    later = time.time() + 1
    assert await store.prune(later, before) == (1, 0)
    assert await store.events_after("ended", 0) is None, "the log was cut"
    assert [e.seq for e in await store.events_after("ended", 3)] == [4]
    assert (await store.latest_event("ended")).status == COMPLETED
    assert len(await store.events_after("running", 0)) == 3, "a running job keeps its log"
    assert await store.prune(later, before) == (0, 0), "a cut log is not cut again"
    assert await store.prune(later, later) == (0, 1)
    assert await store.get_job("ended") is None and await store.get_result("ended") is None
    assert [j.id for j in (await store.list_jobs(None, 10, 0))[0]] == ["running"]
