"""SqliteStore against a real database file: round trips, bounded log, restart."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from app.storage.sqlite_store import SqliteStore
from app.storage.store import JobRecord
from saga.events import COMPLETED, QUEUED, RUNNING, Best, Items, ProgressEvent
from saga.jobs import JobOutcome
from solver.ctt import parse_ctt
from solver.evaluate import evaluate
from solver.timetable import Timetable
from tests.app_support import TOY_CTT


def job(job_id: str, owner: str = "alice", created_at: float = 1000.0) -> JobRecord:
    return JobRecord(job_id, owner, f"name-{job_id}", QUEUED, created_at, 5.0, 7, 1, TOY_CTT, 0)


def event(job_id: str, seq: int, status: str = RUNNING) -> ProgressEvent:
    return ProgressEvent(
        job_id=job_id, seq=seq, status=status, stage="cpsat_solving", stage_progress=10.0 * seq,
        overall_progress=float(seq), eta_seconds=3.5, started_at=1.0, updated_at=2.0 + seq,
        message=f"step {seq}", items=Items(seq, 10), best=Best(0, seq),
    )


@pytest.fixture
async def store(tmp_path: Path):
    s = SqliteStore(tmp_path / "db.sqlite3", keep_events=5)
    await s.connect()
    yield s
    await s.close()


async def test_job_round_trip_and_listing(store: SqliteStore) -> None:
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


async def test_events_move_job_and_log_is_bounded(store: SqliteStore) -> None:
    await store.create_job(job("a"))
    for seq in range(1, 9):
        await store.append_event(event("a", seq))
    record = await store.get_job("a")
    assert (record.status, record.last_seq) == (RUNNING, 8)
    assert await store.latest_event("a") == event("a", 8)
    assert [e.seq for e in await store.events_after("a", 3)] == [4, 5, 6, 7, 8]
    assert await store.events_after("a", 2) is None  # seq 3 was trimmed (5 kept)
    assert await store.events_after("a", 8) == []
    assert await store.latest_event("nope") is None


async def test_result_round_trip_rebuilds_timetable(store: SqliteStore) -> None:
    await store.create_job(job("a"))
    instance = parse_ctt(TOY_CTT)
    tt = Timetable.empty(instance)
    period, room = tt.arrays()
    period[0], room[0] = 3, 1
    tt = Timetable.from_arrays(instance, period, room)
    cost = evaluate(tt)
    outcome = JobOutcome("a", COMPLETED, tt, cost, {"cpsat_solving": cost}, None, time.time())
    await store.save_result(outcome)
    got = await store.get_result("a")
    assert got is not None and got.cost == cost and got.stage_costs == {"cpsat_solving": cost}
    assert (got.timetable.period, got.timetable.room) == (tt.period, tt.room)
    assert evaluate(got.timetable) == cost
    assert await store.get_result("b") is None


async def test_reopened_database_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    first = SqliteStore(path)
    await first.connect()
    await first.create_job(job("done"))
    await first.create_job(job("busy"))
    await first.append_event(event("done", 1, COMPLETED))
    await first.append_event(event("busy", 1, RUNNING))
    await first.close()
    second = SqliteStore(path)
    await second.connect()
    try:
        assert [j.id for j in await second.unfinished_jobs()] == ["busy"]
        assert (await second.get_job("done")).status == COMPLETED
        assert [e.event() for e in await second.events_after("done", 0)] == [event("done", 1, COMPLETED)]
        assert await second.ping()
    finally:
        await second.close()
    assert not await second.ping()
