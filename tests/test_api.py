"""The HTTP API over real sockets, with the real runner solving real (tiny) instances."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient

from app.config import Config
from app.web.application import DB_FILE, create_app
from app.web.keys import RUNNER, STORE
from solver.check import check
from solver.ctt import format_ctt, parse_ctt, parse_sol
from solver.generate import generate
from solver.evaluate import evaluate_assignments
from solver.jsonform import instance_to_json
from saga.events import COMPLETED, ProgressEvent
from saga.jobs import JobOutcome
from solver.evaluate import evaluate
from solver.timetable import Timetable
from tests.app_support import (
    ALICE, BOB, BOB_TOKEN, BUSY_CTT, INCOMPLETE_CTT, ROOT, TOY_CTT, ZERO_ROOM_CTT, ZERO_ROOM_WARNING, Client, config, error_of, finished,
    start, submit,
)

__all__ = ["config"]  # a fixture, used by name

async def test_job_runs_to_a_feasible_timetable(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, config)
    resp = await client.post("/api/jobs", data=TOY_CTT, params={"time_limit": "2", "seed": "3", "name": "toy run"},
                             headers={**ALICE, "Content-Type": "text/plain"})
    assert resp.status == 202
    body = await resp.json()
    assert body["status"] == "queued" and body["links"]["self"] == f"/api/jobs/{body['id']}"
    assert body["warnings"] == []  # the pre-solve check finds nothing odd in the toy
    snap = await finished(client, app, body["id"])
    assert (snap["status"], snap["name"], snap["seed"], snap["owner"]) == ("completed", "toy run", 3, "alice")
    assert snap["warnings"] == []
    assert snap["latest"]["status"] == "completed" and snap["result"]["hard"] == 0
    assert (snap["feasible"], snap["unplaced"], snap["hard_violations"]) == (True, 0, 0)
    assert snap["latest"]["feasible"] is True and snap["latest"]["message"] == "Timetable ready"

    sol = await client.get(f"/api/jobs/{body['id']}/timetable", params={"format": "sol"}, headers=ALICE)
    instance = parse_ctt(TOY_CTT)
    cost = evaluate_assignments(instance, parse_sol(await sol.text(), instance))
    assert cost.hard == 0 and cost.as_dict() == snap["result"]["cost"]

    table = await (await client.get(f"/api/jobs/{body['id']}/timetable", headers=ALICE)).json()
    assert len(table["lectures"]) == instance.total_lectures and table["unplaced"] == [] and table["violations"] == []
    assert (table["feasible"], table["unplaced_count"], table["hard_violations"]) == (True, 0, 0)
    csv = await (await client.get(f"/api/jobs/{body['id']}/timetable", params={"format": "csv"}, headers=ALICE)).text()
    assert csv.splitlines()[0] == "course,room,day,period,teacher,curricula"
    assert len(csv.splitlines()) == instance.total_lectures + 1


async def test_a_job_that_cannot_place_every_lecture_says_so_everywhere(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, config)
    snap = await finished(client, app, await submit(client, body=INCOMPLETE_CTT, time_limit="1"))
    unplaced, hard = snap["unplaced"], snap["hard_violations"]
    assert snap["status"] == "completed" and snap["feasible"] is False and 1 <= unplaced <= hard == snap["result"]["hard"]
    latest = snap["latest"]
    assert (latest["feasible"], latest["unplaced"], latest["hard_violations"]) == (False, unplaced, hard)
    assert latest["message"].startswith(f"Finished without a complete timetable: {unplaced} of 6 lectures unplaced")
    listed = (await (await client.get("/api/jobs", headers=ALICE)).json())["jobs"][0]
    assert (listed["feasible"], listed["unplaced"], listed["hard_violations"]) == (False, unplaced, hard)

    table = await (await client.get(f"/api/jobs/{snap['id']}/timetable", headers=ALICE)).json()
    assert (table["feasible"], table["unplaced_count"], table["hard_violations"]) == (False, unplaced, hard)
    assert len(table["unplaced"]) == unplaced and len(table["lectures"]) == 6 - unplaced

    stream = await (await client.get(f"/api/jobs/{snap['id']}/events", headers=ALICE)).text()
    done = json.loads(stream.split("event: done\ndata: ")[1])
    assert (done["status"], done["feasible"], done["unplaced"], done["hard_violations"]) == ("completed", False, unplaced, hard)


async def test_a_job_stored_before_the_verdict_fields_gets_them_from_its_result(
    aiohttp_client: Client, config: Config
) -> None:
    client, app = await start(aiohttp_client, config)
    job_id = await submit(client, body=INCOMPLETE_CTT, time_limit="1")
    await app[RUNNER].wait(job_id)
    store = app[STORE]
    # Rewrite its end as an older version stored it: no verdict in the event, the same result row.
    old_end = {k: v for k, v in (await store.latest_event(job_id)).to_dict().items()
               if k not in ("feasible", "unplaced", "hard_violations")}
    await store.append_event(ProgressEvent.from_dict({**old_end, "seq": old_end["seq"] + 1}))
    empty = Timetable.empty(parse_ctt(INCOMPLETE_CTT))
    await store.save_result(JobOutcome(job_id, COMPLETED, empty, evaluate(empty), {}, None, 1.0))
    snap = await (await client.get(f"/api/jobs/{job_id}", headers=ALICE)).json()
    assert snap["latest"]["feasible"] is None
    assert (snap["feasible"], snap["unplaced"], snap["hard_violations"]) == (False, 6, evaluate(empty).hard)


async def test_the_pre_solve_warnings_come_with_the_job(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, config)
    resp = await client.post("/api/jobs", data=ZERO_ROOM_CTT, params={"time_limit": "1"},
                             headers={**ALICE, "Content-Type": "text/plain"})
    assert resp.status == 202, await resp.text()
    accepted = await resp.json()
    assert accepted["warnings"] == [ZERO_ROOM_WARNING]
    snap = await finished(client, app, accepted["id"])
    assert snap["status"] == "completed" and snap["warnings"] == [ZERO_ROOM_WARNING]
    listed = (await (await client.get("/api/jobs", headers=ALICE)).json())["jobs"][0]
    assert listed["warnings"] == [ZERO_ROOM_WARNING]


async def test_a_time_limit_too_short_for_the_instance_is_warned_about(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, config)
    big = generate(courses=1000, rooms=140, curricula=330, periods_per_day=8, seed=1)  # ~4,300 lectures
    resp = await client.post("/api/jobs", data=format_ctt(big), params={"time_limit": "10"},
                             headers={**ALICE, "Content-Type": "text/plain"})
    assert resp.status == 202, await resp.text()
    accepted = await resp.json()
    await client.delete(f"/api/jobs/{accepted['id']}", headers=ALICE)  # only the answer matters here
    expected = [f.message for f in check(big, time_limit=10)]  # the check's own words and figures
    size = f"This instance has {big.total_lectures:,} lectures; a 10 s budget is known to place about"
    assert accepted["warnings"] == expected and any(w.startswith(size) for w in expected), expected
    snap = await finished(client, app, accepted["id"])
    assert snap["status"] == "cancelled" and snap["warnings"] == expected


async def test_a_job_stored_before_warnings_existed_reads_back_with_none(aiohttp_client: Client, config: Config) -> None:
    # A database as the version before warnings made it: no warnings column.
    config.data_dir.mkdir(parents=True)
    with closing(sqlite3.connect(config.data_dir / DB_FILE)) as db, db:
        db.execute(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,"
            " created_at REAL NOT NULL, time_limit REAL NOT NULL, seed INTEGER NOT NULL, attempt INTEGER NOT NULL,"
            " instance_ctt TEXT NOT NULL, last_seq INTEGER NOT NULL, trimmed_seq INTEGER NOT NULL DEFAULT 0)"
        )
        db.execute("INSERT INTO jobs VALUES ('old', 'alice', 'old job', 'completed', 1.0, 5.0, 0, 1, ?, 0, 0)",
                   (ZERO_ROOM_CTT,))
    client, app = await start(aiohttp_client, config)
    old = await (await client.get("/api/jobs/old", headers=ALICE)).json()
    assert (old["status"], old["warnings"]) == ("completed", [])
    snap = await finished(client, app, await submit(client, body=ZERO_ROOM_CTT, time_limit="1"))
    assert snap["warnings"] == [ZERO_ROOM_WARNING]  # the same database now keeps them


async def test_callers_need_a_token_and_see_only_their_jobs(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, config)
    assert "Bearer" in await error_of(await client.get("/api/jobs"), 401)
    await error_of(await client.get("/api/jobs/anything/events"), 401)
    await error_of(await client.get("/api/jobs", headers={"Authorization": "Bearer nope"}), 401)
    job_id = await submit(client, time_limit="1")
    await error_of(await client.get(f"/api/jobs/{job_id}", headers=BOB), 404)
    await error_of(await client.delete(f"/api/jobs/{job_id}", headers=BOB), 404)
    await error_of(await client.get(f"/api/jobs/{job_id}/timetable", headers=BOB), 404)
    assert (await (await client.get("/api/jobs", headers=BOB)).json())["total"] == 0
    listing = await (await client.get("/api/jobs", headers=ROOT)).json()
    assert [j["id"] for j in listing["jobs"]] == [job_id] and listing["total"] == 1
    assert (await client.get(f"/api/jobs/{job_id}", headers=ROOT)).status == 200
    await app[RUNNER].wait(job_id)


async def test_session_cookie_stands_in_for_the_token(aiohttp_client: Client, config: Config) -> None:
    client, _ = await start(aiohttp_client, config)
    await error_of(await client.post("/api/session", json={"token": "wrong"}), 401)
    await error_of(await client.post("/api/session", json={"token": 5}), 400)
    resp = await client.post("/api/session", json={"token": BOB_TOKEN})
    assert await resp.json() == {"user": "bob", "admin": False}
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and BOB_TOKEN not in cookie
    assert (await client.get("/api/jobs")).status == 200  # the client's cookie jar sends it
    await client.delete("/api/session")
    await error_of(await client.get("/api/jobs"), 401)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "detail"),
    [
        (TOY_CTT.replace("ArcTec Indaco 3 2 42", "ArcTec Indaco three 2 42"), "text/plain", 400, "line 11"),
        ("", "text/plain", 400, "empty"),
        (json.dumps({"ctt": 5}), "application/json", 400, "'ctt'"),
        (json.dumps({"ctt": TOY_CTT, "time_limit": "soon"}), "application/json", 400, "'time_limit'"),
        (json.dumps({"ctt": TOY_CTT, "time_limit": 99999}), "application/json", 400, "between 1 and"),
        (json.dumps({"ctt": TOY_CTT, "seed": 1.5}), "application/json", 400, "'seed'"),
        (json.dumps({"ctt": TOY_CTT, "sample": "small"}), "application/json", 400, "exactly one"),
        (json.dumps({"sample": "huge"}), "application/json", 400, "no sample named 'huge'"),
        (json.dumps([1]), "application/json", 400, "JSON object"),
        ("{not json", "application/json", 400, "not valid JSON"),
        (TOY_CTT.replace("TecCos Rosa 5 4 40", "TecCos Rosa 19 4 40"), "text/plain", 400, "TecCos"),
        (TOY_CTT, "image/png", 415, "text/plain"),
        ("x" * (65 * 1024), "text/plain", 413, "64 KB"),
    ],
    ids=["ctt-line", "empty", "ctt-type", "time-type", "time-range", "seed", "two-sources", "sample",
         "not-object", "bad-json", "infeasible", "media-type", "too-large"],
)
async def test_bad_submissions_are_refused_with_the_reason(
    aiohttp_client: Client, config: Config, body: str, content_type: str, status: int, detail: str
) -> None:
    client, _ = await start(aiohttp_client, config)
    resp = await client.post("/api/jobs", data=body, headers={**ALICE, "Content-Type": content_type})
    assert detail in await error_of(resp, status)


async def test_json_instance_errors_name_the_field(aiohttp_client: Client, config: Config) -> None:
    client, _ = await start(aiohttp_client, config)
    good = instance_to_json(parse_ctt(TOY_CTT))
    bad = {**good, "courses": [{**good["courses"][0], "lectures": "two"}, *good["courses"][1:]]}
    resp = await client.post("/api/jobs", json={"instance": bad}, headers=ALICE)
    assert "instance.courses[0].lectures" in await error_of(resp, 400)
    resp = await client.post("/api/jobs", json={"instance": {k: v for k, v in good.items() if k != "rooms"}}, headers=ALICE)
    assert "rooms" in await error_of(resp, 400)
    resp = await client.post("/api/jobs", json={"instance": good, "time_limit": 1}, headers=ALICE)
    assert resp.status == 202


async def test_other_entry_forms_are_accepted(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, config)
    form = FormData()
    form.add_field("instance", TOY_CTT.encode(), filename="toy.ctt", content_type="application/octet-stream")
    form.add_field("time_limit", "1")
    resp = await client.post("/api/jobs", data=form, headers=ALICE)
    assert resp.status == 202, await resp.text()
    samples = (await (await client.get("/api/samples", headers=ALICE)).json())["samples"]
    assert [s["name"] for s in samples] == ["small", "medium", "large"]
    assert samples[0]["lectures"] < samples[1]["lectures"] < samples[2]["lectures"]
    resp = await client.post("/api/jobs", json={"sample": "small", "time_limit": 1, "name": "demo"}, headers=ALICE)
    assert resp.status == 202, await resp.text()
    snap = await finished(client, app, (await resp.json())["id"])
    assert snap["name"] == "demo" and snap["time_limit"] == 1


async def test_lookups_that_cannot_be_answered(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, config)
    assert "doesnotexist" in await error_of(await client.get("/api/jobs/doesnotexist", headers=ALICE), 404)
    await error_of(await client.get("/api/jobs", params={"limit": "-1"}, headers=ALICE), 400)
    job_id = await submit(client, BUSY_CTT, time_limit="30")
    assert "format" in await error_of(await client.get(f"/api/jobs/{job_id}/timetable", params={"format": "xml"}, headers=ALICE), 400)
    assert "no timetable yet" in await error_of(await client.get(f"/api/jobs/{job_id}/timetable", headers=ALICE), 404)
    await error_of(await client.put("/api/jobs", headers=ALICE), 405)
    resp = await client.delete(f"/api/jobs/{job_id}", headers=ALICE)
    assert resp.status == 202 and (await resp.json())["status"] in ("stopping", "cancelled")
    snap = await finished(client, app, job_id)
    assert snap["status"] == "cancelled"
    again = await client.delete(f"/api/jobs/{job_id}", headers=ALICE)
    assert again.status == 200 and await again.json() == {"status": "cancelled"}


async def test_too_many_active_jobs(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, replace(config, max_active_jobs=2))
    first, second = await submit(client, BUSY_CTT, time_limit="30"), await submit(client, BUSY_CTT, time_limit="30")
    assert "2 jobs" in await error_of(await client.post("/api/jobs", data=TOY_CTT, headers=ALICE), 429)
    await submit(client, headers=BOB, time_limit="1")  # the limit is per user
    await client.delete(f"/api/jobs/{second}", headers=ALICE)
    await app[RUNNER].wait(second)
    third = await submit(client, time_limit="1")
    for job_id in (first, third):
        await client.delete(f"/api/jobs/{job_id}", headers=ALICE)


async def test_unexpected_errors_become_json_500(aiohttp_client: Client, config: Config, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(config)

    async def boom(_: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app.router.add_get("/api/boom", boom)
    client = await aiohttp_client(app)
    detail = await error_of(await client.get("/api/boom", headers=ALICE), 500)
    assert "secret" not in detail and "Traceback" not in detail
    assert "secret internals" in caplog.text


async def test_health_and_metrics(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, config)
    health = await (await client.get("/api/health")).json()
    assert health == {"status": "ok", "store": True, "slots": {"total": 1, "busy": 0, "free": 1}}
    job_id = await submit(client, time_limit="1")
    await finished(client, app, job_id)
    stream = await client.get(f"/api/jobs/{job_id}/events", headers=ALICE)
    events = (await stream.text()).count("\nevent: ")
    text = await (await client.get("/metrics")).text()
    assert 'timetabler_jobs_finished_total{status="completed"} 1.0' in text
    assert 'timetabler_jobs_active{status="running"} 0.0' in text
    assert "timetabler_solve_seconds_count 1.0" in text and "timetabler_sse_connections 0.0" in text
    assert events >= 2 and f"timetabler_sse_events_sent_total {events}.0" in text
    assert "timetabler_sse_events_coalesced_total 0.0" in text
    await app[STORE].close()  # the store goes away: health says so
    down = await client.get("/api/health")
    assert down.status == 503 and (await down.json())["store"] is False


async def test_job_list_is_newest_first_and_paginated(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, replace(config, max_active_jobs=5))
    ids = [await submit(client, time_limit="30", name=f"job {i}") for i in range(3)]

    async def page(**query: str) -> list[str]:
        body = await (await client.get("/api/jobs", params=query, headers=ALICE)).json()
        assert body["total"] == 3
        return [job["id"] for job in body["jobs"]]

    assert await page() == ids[::-1]
    assert await page(limit="2") == ids[:0:-1] and await page(limit="2", offset="2") == ids[:1]
    assert await page(offset="3") == []
    for job_id in ids:
        await client.delete(f"/api/jobs/{job_id}", headers=ALICE)
        await app[RUNNER].wait(job_id)


async def test_cors_is_off_by_default(aiohttp_client: Client, config: Config) -> None:
    client, _ = await start(aiohttp_client, config)
    resp = await client.get("/api/jobs", headers={**ALICE, "Origin": "https://ui.example"})
    assert resp.status == 200 and not any(h.startswith("Access-Control-") for h in resp.headers)


async def test_cors_only_for_allowed_origins(aiohttp_client: Client, config: Config) -> None:
    client, _ = await start(aiohttp_client, replace(config, cors_origin=("https://ui.example",)))
    resp = await client.get("/api/jobs", headers={**ALICE, "Origin": "https://ui.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    other = await client.get("/api/jobs", headers={**ALICE, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    pre = await client.options("/api/jobs", headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"})
    assert pre.status == 204 and "Authorization" in pre.headers["Access-Control-Allow-Headers"]


async def test_restart_keeps_finished_jobs(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, config)
    job_id = await submit(client, time_limit="1")
    before = await finished(client, app, job_id)
    await client.close()
    client, _ = await start(aiohttp_client, config)
    after = await (await client.get(f"/api/jobs/{job_id}", headers=ALICE)).json()
    assert after["status"] == "completed" and after["result"] == before["result"] and after["latest"] == before["latest"]
    table = await (await client.get(f"/api/jobs/{job_id}/timetable", headers=ALICE)).json()
    assert table["cost"] == before["result"]["cost"]


async def test_interrupted_job_runs_again_as_next_attempt(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, config)
    job_id = await submit(client, BUSY_CTT, time_limit="2")
    await until_running(client, job_id)  # a queued job that never ran would keep its attempt
    await client.close()  # the runner dies with the app: the job never ends
    client, app = await start(aiohttp_client, config)
    snap = await finished(client, app, job_id)
    assert (snap["status"], snap["attempt"], snap["result"]["hard"]) == ("completed", 2, 0)
    log = await app_events(client, job_id)
    restarts = [e for e in log if e["message"] == "Restarted after an interruption (attempt 2 of 3)"]
    assert len(restarts) == 1 and restarts[0]["attempt"] == 2
    seqs = [e["seq"] for e in log]
    assert seqs == sorted(set(seqs)) and log[-1]["status"] == "completed" and log[-1]["attempt"] == 2


async def test_job_interrupted_too_often_fails(aiohttp_client: Client, config: Config) -> None:
    config = replace(config, max_attempts=1)
    client, _ = await start(aiohttp_client, config)
    job_id = await submit(client, BUSY_CTT, time_limit="60")
    await until_running(client, job_id)
    await client.close()
    client, _ = await start(aiohttp_client, config)
    snap = await (await client.get(f"/api/jobs/{job_id}", headers=ALICE)).json()
    assert snap["status"] == "failed" and "Interrupted 1 times" in snap["latest"]["error"]
    assert snap["feasible"] is None and snap["latest"]["feasible"] is None  # it never had a timetable


async def until_running(client: TestClient, job_id: str) -> None:
    """Return once the job's stream says it runs."""
    resp = await client.get(f"/api/jobs/{job_id}/events", headers=ALICE)
    async with asyncio.timeout(60):
        async for line in resp.content:
            if b'"status":"running"' in line:
                break
    resp.close()


async def app_events(client: TestClient, job_id: str) -> list[dict[str, Any]]:
    """Every stored event of the job, read through the SSE endpoint from the start."""
    resp = await client.get(f"/api/jobs/{job_id}/events", headers={**ALICE, "Last-Event-ID": "0"})
    events = []
    async for line in resp.content:
        text = line.decode().strip()
        if text.startswith("data:") and '"seq"' in text:
            events.append(json.loads(text[5:]))
        if text == "event: done":
            break
    return events
