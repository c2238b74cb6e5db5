"""Job routes: submit, list, look at, cancel, and fetch the timetable."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, Callable

from aiohttp import web

from app.security.auth import user, visible_job
from app.storage.store import JobRecord, ResultSummary
from app.web import timetable_view
from app.web.errors import ApiError, bad_request, not_found
from app.web.job_input import read_submission
from app.web.keys import CONFIG, SERVICE, STORE
from app.web.links import links
from app.web.misc import sample_instance
from saga.events import QUEUED, TERMINAL
from saga.jobs import CancelResult, Feasibility, JobOutcome, feasibility_fields
from solver.ctt import format_sol
from solver.timetable import UNPLACED

MAX_PAGE = 100
FORMATS = ("json", "sol", "csv")


async def snapshot(request: web.Request, job: JobRecord) -> dict[str, Any]:
    """A job as the API shows it. Reads the result's summary, never the instance: the page
    polls the job list every few seconds, and parsing stored instances would stall the loop."""
    store = request.app[STORE]
    latest = await store.latest_event(job.id)
    summary = await store.get_result_summary(job.id)
    result = None
    if summary is not None and summary.cost is not None:
        result = {"hard": summary.cost.hard, "soft": summary.cost.soft, "cost": summary.cost.as_dict()}
    return {
        "id": job.id, "name": job.name, "owner": job.owner, "status": job.status, "created_at": job.created_at,
        "attempt": job.attempt, "time_limit": job.time_limit, "seed": job.seed, "warnings": list(job.warnings),
        "latest": latest.to_dict() if latest else None, "result": result, "links": links(job.id),
        # Derived from the stored result, so jobs stored before these fields existed have them too.
        **feasibility_fields(_feasibility(summary)),
    }


def _feasibility(summary: ResultSummary | None) -> Feasibility | None:
    if summary is None or summary.cost is None or summary.unplaced is None or summary.lectures is None:
        return None
    return Feasibility(summary.unplaced, summary.lectures, summary.cost.hard)


async def create(request: web.Request) -> web.Response:
    config, service, caller = request.app[CONFIG], request.app[SERVICE], user(request)
    # Count before reading the body: a refused caller should not cost a parse.
    if await service.active_jobs(caller.name) >= config.max_active_jobs:
        raise ApiError(429, "too_many_jobs", f"You already have {config.max_active_jobs} jobs queued or running; wait for one to finish or cancel one.")
    submission = await read_submission(request, config, sample_instance)
    if await service.active_jobs(caller.name) >= config.max_active_jobs:  # another request won the race while we parsed
        raise ApiError(429, "too_many_jobs", f"You already have {config.max_active_jobs} jobs queued or running.")
    job = JobRecord(
        id=uuid.uuid4().hex[:16], owner=caller.name, name=submission.name, status=QUEUED, created_at=time.time(),
        time_limit=submission.time_limit, seed=submission.seed, attempt=1,
        instance_ctt=submission.instance_ctt, last_seq=0, warnings=submission.warnings,
    )
    await service.submit(job, submission.instance)
    return web.json_response({"id": job.id, "status": QUEUED, "links": links(job.id), "warnings": list(job.warnings)},
                             status=202, headers={"Location": links(job.id)["self"]})


def _page_arg(request: web.Request, name: str, default: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses; 12 digits
    # stay below int()'s digit limit.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12) or not 0 <= int(raw) <= high:
        raise bad_request(f"Query parameter '{name}' must be a whole number from 0 to {high}.")
    return int(raw)


async def list_jobs(request: web.Request) -> web.Response:
    limit = _page_arg(request, "limit", 20, MAX_PAGE)
    offset = _page_arg(request, "offset", 0, 10**9)
    caller = user(request)
    jobs, total = await request.app[STORE].list_jobs(None if caller.admin else caller.name, limit, offset)
    return web.json_response(
        {"jobs": [await snapshot(request, j) for j in jobs], "total": total, "limit": limit, "offset": offset}
    )


async def get(request: web.Request) -> web.Response:
    job = await visible_job(request, request.match_info["id"])
    return web.json_response(await snapshot(request, job))


async def cancel(request: web.Request) -> web.Response:
    job = await visible_job(request, request.match_info["id"])
    if job.status in TERMINAL:
        return web.json_response({"status": job.status})
    outcome = await request.app[SERVICE].cancel(job.id)
    if outcome is CancelResult.UNKNOWN:  # it finished between the read and the cancel
        fresh = await request.app[STORE].get_job(job.id)
        return web.json_response({"status": fresh.status if fresh else job.status})
    status = "cancelled" if outcome is CancelResult.REMOVED else "stopping"
    return web.json_response({"status": status}, status=202)


async def timetable(request: web.Request) -> web.Response:
    job = await visible_job(request, request.match_info["id"])
    fmt = request.query.get("format", "json")
    if fmt not in FORMATS:
        raise bad_request(f"Query parameter 'format' must be one of {', '.join(FORMATS)}, not {fmt[:20]!r}.")
    outcome = await request.app[STORE].get_result(job.id)
    if outcome is None or outcome.timetable is None or outcome.cost is None:
        raise not_found(f"Job {job.id} has no timetable yet (status {job.status}).")
    if all(p == UNPLACED for p in outcome.timetable.period):
        # A job cancelled while queued (or before its first placement) ends with nothing placed.
        raise not_found(f"Job {job.id} ended {outcome.status} before any lecture was placed: it has no timetable.")
    # Rendering walks every lecture (and the JSON form every clash): a worker thread's job.
    body, content_type = await asyncio.to_thread(RENDER[fmt], job.id, outcome)
    headers = {} if fmt == "json" else _download(job, fmt)
    return web.Response(text=body, content_type=content_type, headers=headers)


def _as_json(job_id: str, outcome: JobOutcome) -> tuple[str, str]:
    assert outcome.timetable is not None and outcome.cost is not None
    return json.dumps(timetable_view.as_json(job_id, outcome.status, outcome.timetable, outcome.cost)), "application/json"


def _as_sol(_: str, outcome: JobOutcome) -> tuple[str, str]:
    assert outcome.timetable is not None
    return format_sol(outcome.timetable), "text/plain"


def _as_csv(_: str, outcome: JobOutcome) -> tuple[str, str]:
    assert outcome.timetable is not None and outcome.cost is not None
    return timetable_view.as_csv(outcome.timetable, outcome.cost), "text/csv"


RENDER: dict[str, Callable[[str, JobOutcome], tuple[str, str]]] = {"json": _as_json, "sol": _as_sol, "csv": _as_csv}


def _download(job: JobRecord, ext: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{job.id}.{ext}"'}


def setup(app: web.Application) -> None:
    app.router.add_post("/api/jobs", create)
    app.router.add_get("/api/jobs", list_jobs)
    app.router.add_get("/api/jobs/{id}", get)
    app.router.add_delete("/api/jobs/{id}", cancel)
    app.router.add_get("/api/jobs/{id}/timetable", timetable)
