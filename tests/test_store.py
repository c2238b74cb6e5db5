"""SqliteStore against a real database file: a restart keeps everything. What every store
promises (round trips, bounded log, sessions) is tests/test_store_contract.py."""

from __future__ import annotations

from pathlib import Path

from app.storage.sqlite_store import SqliteStore
from saga.events import COMPLETED, RUNNING
from tests.store_support import event, job


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
