"""The OpenAPI description stays true: same routes as the app, and real responses
carry documented status codes and the documented fields."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from app.config import Config
from app.web.application import create_app
from app.web.openapi import SPEC
from tests.app_support import ALICE, ALICE_TOKEN, BOB, BUSY_CTT, TOY_CTT, ZERO_ROOM_CTT, Client, config, finished, start, submit

__all__ = ["config"]  # a fixture, used by name
PAGE_ROUTES = {"/", "/static"}  # the browser page, not part of the API
TYPES = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float), "boolean": bool,
         "null": type(None)}


def router_operations(app: web.Application) -> set[tuple[str, str]]:
    ops = set()
    for route in app.router.routes():
        path = re.sub(r"\{(\w+)[^}]*\}", r"{\1}", route.resource.canonical)
        if path not in PAGE_ROUTES and route.method != "HEAD":  # aiohttp adds HEAD to every GET
            ops.add((path, route.method.lower()))
    return ops


def spec_operations() -> set[tuple[str, str]]:
    return {(path, method) for path, item in SPEC["paths"].items() for method in item if method != "parameters"}


def test_spec_and_router_list_the_same_operations(config: Config) -> None:
    app = create_app(config)
    assert spec_operations() == router_operations(app)


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return SPEC["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def problems(value: Any, schema: dict[str, Any], where: str = "body") -> list[str]:
    """The ways `value` breaks `schema` (the subset of JSON Schema the spec uses)."""
    schema = resolve(schema)
    if "oneOf" in schema:
        fits = [not problems(value, option, where) for option in schema["oneOf"]]
        return [] if sum(fits) == 1 else [f"{where}: matches {sum(fits)} of oneOf"]
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(isinstance(value, TYPES[k]) and not (k in ("integer", "number") and isinstance(value, bool)) for k in kinds):
            return [f"{where}: {value!r:.40} is not {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    found = []
    if isinstance(value, dict):
        found += [f"{where}.{k}: missing" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            sub = schema.get("properties", {}).get(k) or schema.get("additionalProperties")
            if isinstance(sub, dict):
                found += problems(v, sub, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            found += problems(v, schema["items"], f"{where}[{i}]")
    return found


async def check(client: TestClient, method: str, path: str, template: str, **kwargs: Any) -> int:
    resp = await client.request(method, path, **kwargs)
    operation = SPEC["paths"][template][method.lower()]
    documented = operation["responses"].get(str(resp.status))
    assert documented is not None, f"{method} {template} answered undocumented {resp.status}"
    content_type = resp.headers["Content-Type"].split(";")[0]
    assert content_type in documented["content"], f"{method} {template} {resp.status}: {content_type} not documented"
    if content_type == "application/json":
        assert problems(await resp.json(), documented["content"][content_type]["schema"]) == []
    return resp.status


async def test_real_responses_match_the_spec(aiohttp_client: Client, config: Config) -> None:
    client, app = await start(aiohttp_client, config)
    job = "/api/jobs/{id}"
    assert await check(client, "GET", "/api/jobs", "/api/jobs") == 401
    assert await check(client, "POST", "/api/session", "/api/session", json={"token": ALICE_TOKEN}) == 200
    assert await check(client, "POST", "/api/session", "/api/session", json={"token": "bad"}) == 401
    assert await check(client, "POST", "/api/jobs", "/api/jobs", data="bad", headers={**ALICE, "Content-Type": "text/plain"}) == 400
    assert await check(client, "POST", "/api/jobs", "/api/jobs", data="x" * 70_000, headers={**ALICE, "Content-Type": "text/plain"}) == 413
    assert await check(client, "POST", "/api/jobs", "/api/jobs", data=b"x", headers={**ALICE, "Content-Type": "image/png"}) == 415
    warned = {"data": ZERO_ROOM_CTT, "params": {"time_limit": "1"}, "headers": {**ALICE, "Content-Type": "text/plain"}}
    assert await check(client, "POST", "/api/jobs", "/api/jobs", **warned) == 202  # with a warning
    job_id = await submit(client, time_limit="1")
    assert await check(client, "GET", f"/api/jobs/{job_id}/timetable", job + "/timetable", headers=ALICE) == 404
    await finished(client, app, job_id)
    for fmt, status in (("json", 200), ("sol", 200), ("csv", 200), ("pdf", 400)):
        got = await check(client, "GET", f"/api/jobs/{job_id}/timetable", job + "/timetable", params={"format": fmt}, headers=ALICE)
        assert got == status
    assert await check(client, "GET", f"/api/jobs/{job_id}", job, headers=ALICE) == 200
    assert await check(client, "GET", f"/api/jobs/{job_id}", job, headers=BOB) == 404
    assert await check(client, "GET", "/api/jobs", "/api/jobs", headers=ALICE) == 200
    assert await check(client, "GET", "/api/jobs", "/api/jobs", params={"limit": "x"}, headers=ALICE) == 400
    assert await check(client, "DELETE", f"/api/jobs/{job_id}", job, headers=ALICE) == 200
    running = await submit(client, BUSY_CTT, time_limit="30")
    assert await check(client, "DELETE", f"/api/jobs/{running}", job, headers=ALICE) == 202
    await finished(client, app, running)
    for _ in range(config.max_active_jobs):
        await submit(client, BUSY_CTT, time_limit="30")
    assert await check(client, "POST", "/api/jobs", "/api/jobs", data=TOY_CTT, headers={**ALICE, "Content-Type": "text/plain"}) == 429
    assert await check(client, "GET", "/api/samples", "/api/samples", headers=ALICE) == 200
    assert await check(client, "GET", "/api/health", "/api/health") == 200
    assert await check(client, "GET", "/metrics", "/metrics") == 200
    assert await check(client, "GET", "/api/openapi.json", "/api/openapi.json") == 200
    assert await check(client, "DELETE", "/api/session", "/api/session") == 200
