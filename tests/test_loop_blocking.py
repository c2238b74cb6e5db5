"""No work that blocks the event loop (issue 10, item 9): submissions are parsed and
checked in a worker thread, the job list never parses stored instances, the timetable
is read and rendered off the loop, and instances past the service's size limits are
refused before any matrix is built. Real sockets, the real runner."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any, Callable

import pytest
from aiohttp import FormData

from app.config import Config
from app.storage import result_codec
from app.web import instance_limits, job_input, timetable_view
from app.web.keys import RUNNER
from solver.ctt import format_ctt, parse_ctt
from solver.jsonform import instance_to_json
from tests.app_support import ALICE, TOY_CTT, Client, config, error_of, start, submit
from tests.largest_instances import Shape, build

__all__ = ["config"]  # a fixture, used by name


def spy(monkeypatch: pytest.MonkeyPatch, module: object, name: str, calls: list[tuple[str, bool]]) -> None:
    """Record each call of `module.name` and whether it ran on this (the event loop's) thread."""
    loop_thread = threading.get_ident()
    original: Callable[..., Any] = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append((name, threading.get_ident() == loop_thread))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


async def test_submissions_are_parsed_and_checked_off_the_event_loop(
    aiohttp_client: Client, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, app = await start(aiohttp_client, replace(config, max_active_jobs=10))
    calls: list[tuple[str, bool]] = []
    for name in ("parse_ctt", "instance_from_json", "check"):
        spy(monkeypatch, job_input, name, calls)
    form = FormData()
    form.add_field("instance", TOY_CTT.encode(), filename="toy.ctt")
    form.add_field("time_limit", "30")
    ids = [
        await submit(client, time_limit="30"),
        (await (await client.post("/api/jobs", json={"ctt": TOY_CTT, "time_limit": 30}, headers=ALICE)).json())["id"],
        (await (await client.post("/api/jobs", json={"instance": instance_to_json(parse_ctt(TOY_CTT)), "time_limit": 30},
                                  headers=ALICE)).json())["id"],
        (await (await client.post("/api/jobs", data=form, headers=ALICE)).json())["id"],
    ]
    assert sorted({name for name, _ in calls}) == ["check", "instance_from_json", "parse_ctt"]
    assert [name for name, on_loop in calls if on_loop] == []
    for job_id in ids:
        await client.delete(f"/api/jobs/{job_id}", headers=ALICE)
        await app[RUNNER].wait(job_id)


async def test_the_job_list_never_parses_stored_instances(
    aiohttp_client: Client, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, app = await start(aiohttp_client, config)
    ids = [await submit(client, time_limit="1") for _ in range(2)]
    for job_id in ids:
        await app[RUNNER].wait(job_id)
    before = (await (await client.get("/api/jobs", headers=ALICE)).json())["jobs"]
    await client.close()

    calls: list[tuple[str, bool]] = []
    spy(monkeypatch, result_codec, "parse_ctt", calls)
    spy(monkeypatch, timetable_view, "timetable_to_json", calls)
    client, app = await start(aiohttp_client, config)  # a fresh store: no parsed instance cached
    after = (await (await client.get("/api/jobs", headers=ALICE)).json())["jobs"]
    one = await (await client.get(f"/api/jobs/{ids[0]}", headers=ALICE)).json()
    assert calls == []
    assert after == before and one == before[-1]
    assert (after[0]["feasible"], after[0]["unplaced"], after[0]["hard_violations"]) == (True, 0, 0)
    # The timetable needs the instance: it is parsed, and the view rendered, in worker threads.
    table = await client.get(f"/api/jobs/{ids[0]}/timetable", headers=ALICE)
    assert table.status == 200 and (await table.json())["feasible"] is True
    assert calls == [("parse_ctt", False), ("timetable_to_json", False)]


@pytest.mark.parametrize(
    ("shape", "detail"),
    [
        (Shape("courses", instance_limits.MAX_COURSES + 1, 100, 0, 0, instance_limits.MAX_COURSES + 1),
         f"instance.courses: {instance_limits.MAX_COURSES + 1:,} courses"),
        (Shape("memberships", 1000, 60, 200, 130, 1000), "courses listed by the curricula together"),
    ],
    ids=["too-many-courses", "too-many-memberships"],
)
async def test_instances_past_the_service_limits_are_refused_before_any_matrix(
    aiohttp_client: Client, config: Config, monkeypatch: pytest.MonkeyPatch, shape: Shape, detail: str
) -> None:
    client, _ = await start(aiohttp_client, replace(config, max_body=5 * 1024 * 1024))
    calls: list[tuple[str, bool]] = []
    spy(monkeypatch, job_input, "check", calls)
    resp = await client.post("/api/jobs", data=format_ctt(build(shape)), headers={**ALICE, "Content-Type": "text/plain"})
    assert detail in await error_of(resp, 400)
    assert calls == []  # refused on counts, before the conflict matrix and the pre-solve check
