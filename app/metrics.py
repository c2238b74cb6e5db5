"""Prometheus metrics of one app, in its own registry (so several apps in one process,
as in tests, never share or clash)."""

from __future__ import annotations

from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from app.hub import HubStats
from saga.events import TERMINAL, ProgressEvent

CONTENT_TYPE = CONTENT_TYPE_LATEST
SOLVE_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class _HubCollector(Collector):
    """Reads the hub's counters at scrape time, so the streams keep plain integers."""

    def __init__(self, stats: HubStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        yield GaugeMetricFamily("timetabler_sse_connections", "Open SSE connections", value=s.open_connections)
        yield CounterMetricFamily("timetabler_sse_events_sent", "Events written to SSE clients", value=s.events_sent)
        yield CounterMetricFamily(
            "timetabler_sse_events_coalesced", "Progress events skipped for slow SSE clients", value=s.events_coalesced
        )
        yield CounterMetricFamily(
            "timetabler_sse_subscribers_dropped", "SSE clients cut off for staying unwritable", value=s.subscribers_dropped
        )


class Metrics:
    """Job counts and solve times, followed from published events, plus the hub's SSE counters."""

    def __init__(self, hub_stats: HubStats) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_HubCollector(hub_stats))
        self.active_jobs = Gauge(
            "timetabler_jobs_active", "Jobs queued or running, by status", ["status"], registry=self.registry
        )
        self.finished_jobs = Counter(
            "timetabler_jobs_finished", "Jobs that reached a final status, by status", ["status"], registry=self.registry
        )
        self.solve_seconds = Histogram(
            "timetabler_solve_seconds", "Wall time from start to final status", buckets=SOLVE_BUCKETS, registry=self.registry
        )
        self._status: dict[str, str] = {}  # active job id -> its current status
        for status in ("queued", "running"):
            self.active_jobs.labels(status).set(0)

    def observe(self, event: ProgressEvent) -> None:
        """Follow a job's status changes; called for every published event."""
        previous = self._status.pop(event.job_id, None)
        if previous is not None:
            self.active_jobs.labels(previous).dec()
        if event.status in TERMINAL:
            self.finished_jobs.labels(event.status).inc()
            if event.started_at is not None:
                self.solve_seconds.observe(max(0.0, event.updated_at - event.started_at))
            return
        self._status[event.job_id] = event.status
        self.active_jobs.labels(event.status).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
