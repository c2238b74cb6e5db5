"""`worker --metrics-port P`: the worker's Prometheus metrics and health, its only HTTP.

`GET /metrics`: queue length, jobs claimed, taken over from stopped workers, failed for
running out of attempts, runs lost to a takeover, Redis errors, the cancel listener's
resubscriptions, slots busy. `GET /api/health`: 200 while Redis takes writes, else 503
saying why, in the service's JSON error shape.
"""

from __future__ import annotations

from typing import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from app.storage.queue import JobQueue
from app.storage.redis_cancel import RedisCancelSignals
from app.storage.store import Store
from app.web.metrics import CONTENT_TYPE, AtScrape
from app.workers.worker import Worker


def _worker_metrics(worker: Worker, cancels: RedisCancelSignals, queued: list[int]) -> Iterator[Metric]:
    s = worker.stats
    yield GaugeMetricFamily("timetabler_queue_length", "Jobs waiting in the shared queue, unclaimed", value=queued[0])
    yield GaugeMetricFamily("timetabler_worker_slots_busy", "Jobs this worker runs now", value=worker.busy)
    for name, value, text in (
        ("claimed", s.claimed, "Jobs this worker took from the queue"),
        ("reclaimed", s.reclaimed, "Jobs this worker took over from stopped workers (next attempt)"),
        ("exhausted", s.exhausted, "Jobs failed for running out of attempts"),
        ("lost", s.lost, "Runs stopped because another worker took the job over"),
        ("redis_errors", s.store_errors, "Redis calls that failed (retried)"),
        ("cancel_resubscribes", cancels.resubscribes, "Cancel subscriptions made again after a loss"),
    ):
        yield CounterMetricFamily(f"timetabler_worker_{name}", text, value=value)


def health_app(worker: Worker, queue: JobQueue, cancels: RedisCancelSignals, store: Store) -> web.Application:
    registry = CollectorRegistry()
    queued = [0]  # read from Redis by the handler, before the synchronous collector runs
    registry.register(AtScrape(lambda: _worker_metrics(worker, cancels, queued)))

    async def metrics(_: web.Request) -> web.Response:
        try:
            queued[0] = await queue.length()
        except Exception:  # Redis away: the counters still answer; the length is the last seen
            pass
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE})

    async def health(_: web.Request) -> web.Response:
        problem = await store.write_problem()
        if problem is None:
            return web.json_response({"status": "ok", "redis": True, "slots": {"busy": worker.busy}})
        return web.json_response({"error": "unavailable", "detail": f"Redis cannot be written: {problem}",
                                  "redis": False}, status=503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/health", health)
    return app
