"""Health, metrics, the OpenAPI description and the built-in sample instances."""

from __future__ import annotations

from functools import cache

from aiohttp import web

from app.web import openapi
from app.web.keys import METRICS, RUNNER, STORE
from app.web.metrics import CONTENT_TYPE
from solver.generate import generate
from solver.model import Instance

# Generated, so always feasible; sizes span a few seconds to a few minutes of solving.
SAMPLE_SIZES = {
    "small": {"courses": 10, "rooms": 3, "curricula": 4},
    "medium": {"courses": 40, "rooms": 8, "curricula": 14},
    "large": {"courses": 120, "rooms": 18, "curricula": 40},
}


@cache
def _sample(name: str) -> Instance:
    return generate(**SAMPLE_SIZES[name], seed=2007, name=f"sample-{name}")


def sample_instance(name: str) -> Instance | None:
    return _sample(name) if name in SAMPLE_SIZES else None


async def samples(_: web.Request) -> web.Response:
    rows = []
    for name in SAMPLE_SIZES:
        instance = _sample(name)
        rows.append({
            "name": name, "courses": len(instance.courses), "rooms": len(instance.rooms),
            "curricula": len(instance.curricula), "lectures": instance.total_lectures,
            "days": instance.days, "periods_per_day": instance.periods_per_day,
        })
    return web.json_response({"samples": rows})


async def health(request: web.Request) -> web.Response:
    """200 when the store answers and takes a write; else 503 saying why. A store that
    reads but cannot write (disk full) cannot finish a job, so it is not healthy."""
    store = request.app[STORE]
    # write_problem names the store and what is wrong with it (the database file, Redis at host:port).
    problem = await store.write_problem() if await store.ping() else (await store.write_problem() or "it does not answer.")
    runner = request.app[RUNNER]
    body: dict[str, object] = {
        "status": "ok" if problem is None else "unavailable",
        "store": problem is None,
        "slots": {"total": runner.slots, "busy": runner.busy_slots, "free": runner.slots - runner.busy_slots},
    }
    if problem is not None:
        body["detail"] = f"The store cannot be written: {problem}"
    return web.json_response(body, status=200 if problem is None else 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def openapi_json(_: web.Request) -> web.Response:
    return web.json_response(openapi.SPEC)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/api/samples", samples)
