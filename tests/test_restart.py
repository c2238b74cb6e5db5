"""Restart recovery, over real sockets with real solver children: attempts count only runs
that happened, a stored job that no longer reads fails alone, a restarted job's progress
carries on, and one data dir serves one service."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from app.config import Config
from app.storage.datadir_lock import LOCK_FILE, lock_data_dir
from app.web.application import DB_FILE
from tests.app_support import ALICE, BUSY_CTT, TOY_CTT, Client, config, finished, start, submit
from tests.browser_support import ROOT, Service
from tests.test_api import app_events

__all__ = ["config"]  # a fixture, used by name
WAIT = 60.0


async def wait_for_event(client: TestClient, job_id: str, accept: Any) -> dict[str, Any]:
    """The first live event of the job that `accept` takes."""
    resp = await client.get(f"/api/jobs/{job_id}/events", headers=ALICE)
    async with asyncio.timeout(WAIT):
        async for line in resp.content:
            text = line.decode().strip()
            if text.startswith("data:") and '"seq"' in text and accept(event := json.loads(text[5:])):
                resp.close()
                return event
    raise AssertionError("the stream ended first")


async def test_a_queued_job_that_never_ran_keeps_its_attempt(aiohttp_client: Client, config: Config) -> None:
    config = replace(config, max_attempts=1)
    client, _ = await start(aiohttp_client, config)
    ran = await submit(client, BUSY_CTT, time_limit="30")
    waited = await submit(client, time_limit="1")  # one slot: this one waits in line
    await wait_for_event(client, ran, lambda e: e["status"] == "running")
    await client.close()  # both interrupted: one while running, one while queued

    client, app = await start(aiohttp_client, config)
    gone = await (await client.get(f"/api/jobs/{ran}", headers=ALICE)).json()
    assert gone["status"] == "failed" and "Interrupted 1 times" in gone["latest"]["error"]
    snap = await finished(client, app, waited)  # before the fix: failed too, its one attempt used up
    assert (snap["status"], snap["attempt"]) == ("completed", 1)
    assert any(e["message"] == "Queued again after a restart (attempt 1 of 1)" for e in await app_events(client, waited))


async def test_a_stored_job_that_no_longer_reads_fails_and_the_service_still_starts(
    aiohttp_client: Client, config: Config
) -> None:
    client, _ = await start(aiohttp_client, config)  # makes the database
    good = await submit(client, time_limit="30")
    await client.close()
    with closing(sqlite3.connect(config.data_dir / DB_FILE)) as db, db:
        db.execute(
            "INSERT INTO jobs (id, owner, name, status, created_at, time_limit, seed, attempt, instance_ctt, last_seq)"
            " VALUES ('broken', 'alice', 'broken', 'running', ?, 5.0, 0, 1, 'Name: x\nCourses: many\n', 0)",
            (time.time() - 60,),
        )

    client, app = await start(aiohttp_client, config)  # before the fix: start-up dies on the parse error
    broken = await (await client.get("/api/jobs/broken", headers=ALICE)).json()
    assert broken["status"] == "failed"
    assert broken["latest"]["error"].startswith("Could not be run again after a restart: its stored instance no longer reads")
    assert "Traceback" not in broken["latest"]["error"]
    await client.delete(f"/api/jobs/{good}", headers=ALICE)  # the other job runs as before
    assert (await finished(client, app, good))["status"] == "cancelled"


async def test_a_restarted_job_continues_its_progress_instead_of_falling_to_zero(
    aiohttp_client: Client, config: Config
) -> None:
    client, _ = await start(aiohttp_client, config)
    job_id = await submit(client, BUSY_CTT, time_limit="8")
    reached = await wait_for_event(client, job_id, lambda e: e["overall_progress"] >= 20)
    await client.close()

    client, app = await start(aiohttp_client, config)
    snap = await finished(client, app, job_id)
    assert (snap["status"], snap["attempt"]) == ("completed", 2)
    events = await app_events(client, job_id)
    first = [e["overall_progress"] for e in events if e["attempt"] == 1]
    second = [e for e in events if e["attempt"] == 2]
    assert max(first) >= reached["overall_progress"]
    overall = [e["overall_progress"] for e in second]
    assert overall == sorted(overall) and overall[0] == first[-1] and overall[-1] == 100.0, (first, overall)
    assert all("attempt 2" in e["message"] for e in second if e["status"] == "running")


def test_a_second_service_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    first = Service(tmp_path / "data")
    first.data_dir.mkdir()
    first.start()
    try:
        command = [sys.executable, "-m", "app", "serve", "--port", str(first.port + 1), "--data-dir", str(first.data_dir),
                   "--admin-token", "a-second-admin-token-0123"]
        second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=WAIT)
        assert second.returncode == 2, second.stderr
        assert second.stderr == (f"timetabler: error: the data dir {first.data_dir} is in use by another timetabler serve "
                                 f"(pid {first.process.pid}); one data dir serves one service: stop that one or give "
                                 "this one its own --data-dir\n")
        assert first.healthy()  # the first one never noticed
    finally:
        first.stop()
    lock = lock_data_dir(first.data_dir)  # the lock went with the process
    lock.close()
    assert (first.data_dir / LOCK_FILE).exists()
