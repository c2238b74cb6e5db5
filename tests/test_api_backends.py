"""The API's core flows on both backends: the embedded SQLite default and Redis (a
redis-server of the test's own; the instance runs one worker slot itself, `--slots 1`).

Submit, stream to `done`, resume with Last-Event-ID, cancel with best-so-far, ownership,
bad input and the per-user quota must answer the same whichever backend runs."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from app.config import Config
from app.web.keys import STORE
from solver.ctt import parse_ctt, parse_sol
from solver.evaluate import evaluate_assignments
from tests.app_support import ALICE, BOB, BUSY_CTT, TOY_CTT, Client, config, error_of, start, submit
from tests.redis_support import RedisServer
from tests.store_support import until

__all__ = ["config"]  # a fixture, used by name


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, config: Config) -> Config:
    if request.param == "sqlite":
        return config
    server: RedisServer = request.getfixturevalue("redis_server")
    return replace(config, redis=server.url)


async def follow(client: TestClient, job_id: str, last_event_id: int | None = None,
                 until_seq: int | None = None) -> list[dict[str, Any]]:
    """The stream's events until `done` (or until seq `until_seq`)."""
    headers = {**ALICE, **({"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {})}
    got: list[dict[str, Any]] = []
    async with client.get(f"/api/jobs/{job_id}/events", headers=headers) as resp:
        assert resp.status == 200
        name = None
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "done":
                return got
            elif line.startswith("data: ") and name in ("progress", "snapshot"):
                got.append(json.loads(line[6:]))
                if until_seq is not None and got[-1]["seq"] >= until_seq:
                    return got
    return got


async def test_submit_stream_resume_and_download(aiohttp_client: Client, backend: Config) -> None:
    client, _ = await start(aiohttp_client, backend)
    job_id = await submit(client)
    seen = await follow(client, job_id)
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(set(seqs)) and seqs[0] == 1 and seen[-1]["status"] == "completed"
    middle = seqs[len(seqs) // 2]
    assert [e["seq"] for e in await follow(client, job_id, last_event_id=middle)] == [s for s in seqs if s > middle]
    sol = await client.get(f"/api/jobs/{job_id}/timetable", params={"format": "sol"}, headers=ALICE)
    instance = parse_ctt(TOY_CTT)
    assert evaluate_assignments(instance, parse_sol(await sol.text(), instance)).hard == 0
    snapshot = await (await client.get(f"/api/jobs/{job_id}", headers=ALICE)).json()
    assert snapshot["status"] == "completed" and snapshot["result"]["hard"] == 0


async def test_cancel_keeps_the_best_so_far(aiohttp_client: Client, backend: Config) -> None:
    client, _ = await start(aiohttp_client, backend)
    job_id = await submit(client, BUSY_CTT, time_limit="30")
    await follow(client, job_id, until_seq=4)  # running, with a timetable on the way
    resp = await client.delete(f"/api/jobs/{job_id}", headers=ALICE)
    assert resp.status in (200, 202)
    end = (await follow(client, job_id))[-1]
    assert end["status"] == "cancelled"
    sol = await client.get(f"/api/jobs/{job_id}/timetable", params={"format": "sol"}, headers=ALICE)
    assert sol.status == 200 and (await sol.text()).strip()


async def test_ownership_bad_input_and_quota(aiohttp_client: Client, backend: Config) -> None:
    client, _ = await start(aiohttp_client, replace(backend, max_active_jobs=1))
    job_id = await submit(client, BUSY_CTT, time_limit="30")
    for path in (f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/events", f"/api/jobs/{job_id}/timetable"):
        await error_of(await client.get(path, headers=BOB), 404)
        await error_of(await client.get(path), 401)
    await error_of(await client.delete(f"/api/jobs/{job_id}", headers=BOB), 404)
    bad = await client.post("/api/jobs", data="Name: x\n", headers={**BOB, "Content-Type": "text/plain"})
    assert "Courses" in await error_of(bad, 400)
    again = await client.post("/api/jobs", data=TOY_CTT, headers={**ALICE, "Content-Type": "text/plain"})
    await error_of(again, 429)
    await client.delete(f"/api/jobs/{job_id}", headers=ALICE)
    assert (await follow(client, job_id))[-1]["status"] == "cancelled"


async def test_retention_cuts_an_ended_job_s_log_then_deletes_the_job(aiohttp_client: Client, backend: Config) -> None:
    client, app = await start(aiohttp_client, replace(backend, event_retention=0.2, job_retention=1.5))
    job_id = await submit(client)
    seqs = [e["seq"] for e in await follow(client, job_id)]
    store = app[STORE]

    async def log_cut() -> bool:
        return await store.events_after(job_id, 0) is None

    await until(log_cut, "the ended job's log to be cut to its final event")
    again = await follow(client, job_id)  # a late subscriber still learns how it ended
    assert [e["seq"] for e in again] == [seqs[-1]] and again[0]["status"] == "completed"

    async def deleted() -> bool:
        return (await client.get(f"/api/jobs/{job_id}", headers=ALICE)).status == 404

    await until(deleted, "the job to be deleted after --job-retention")
