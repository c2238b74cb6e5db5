"""Prometheus metrics of one app, in its own registry (so several apps in one process,
as in tests, never share or clash): jobs, SSE streams, connections and their limits."""

from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from app.web.connections import ConnectionStats
from app.web.hub import HubStats
from app.web.redis_follow import FollowStats
from saga.events import TERMINAL, ProgressEvent

CONTENT_TYPE = CONTENT_TYPE_LATEST
SOLVE_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class AtScrape(Collector):
    """Reads plain counters at scrape time, so the code that keeps them (hub, streams,
    connection guard) needs no Prometheus types."""

    def __init__(self, read: Callable[[], Iterator[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        return self._read()


def _by_limit(name: str, documentation: str, **counts: int) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=["limit"])
    for limit, count in counts.items():
        family.add_metric([limit], count)
    return family


def _hub_metrics(s: HubStats) -> Iterator[Metric]:
    yield GaugeMetricFamily("timetabler_sse_connections", "Open SSE connections", value=s.open_connections)
    yield CounterMetricFamily("timetabler_sse_events_sent", "Events written to SSE clients", value=s.events_sent)
    yield CounterMetricFamily(
        "timetabler_sse_events_coalesced", "Progress events skipped for slow SSE clients", value=s.events_coalesced
    )
    yield CounterMetricFamily(
        "timetabler_sse_subscribers_dropped", "SSE clients cut off for staying unwritable", value=s.subscribers_dropped
    )
    yield CounterMetricFamily(
        "timetabler_sse_frames_encoded", "Events encoded for SSE clients (once per event, however many watch)",
        value=s.frames_encoded,
    )
    yield CounterMetricFamily(
        "timetabler_sse_events_paced", "Progress events superseded before their turn, for large audiences",
        value=s.events_paced,
    )
    yield _by_limit("timetabler_sse_refused", "SSE streams refused, by the limit reached",
                    total=s.subscribers_refused, user=s.subscribers_refused_user)


def _connection_metrics(s: ConnectionStats) -> Iterator[Metric]:
    yield GaugeMetricFamily("timetabler_connections_open", "Open client connections", value=s.open)
    yield _by_limit("timetabler_connections_refused", "Connections refused, by the cap reached",
                    total=s.refused_total, client=s.refused_client)
    yield CounterMetricFamily(
        "timetabler_request_body_timeouts", "Requests whose body did not arrive in time (408)", value=s.body_timeouts
    )


def _follow_metrics(s: FollowStats) -> Iterator[Metric]:
    yield GaugeMetricFamily("timetabler_redis_event_readers", "Jobs whose Redis event stream this process reads",
                            value=s.readers)
    yield CounterMetricFamily("timetabler_redis_event_reconnects", "Event stream reads that succeeded after failing",
                              value=s.reconnects)
    yield CounterMetricFamily("timetabler_redis_event_errors", "Failed event stream reads and unreadable entries",
                              value=s.errors)


class Metrics:
    """Job counts and solve times, followed from published events, plus the hub's SSE
    counters, the connection guard's and, on Redis, the event stream readers'."""

    def __init__(self, hub_stats: HubStats, connection_stats: ConnectionStats | None = None,
                 follow_stats: FollowStats | None = None) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(AtScrape(lambda: _hub_metrics(hub_stats)))
        if connection_stats is not None:
            self.registry.register(AtScrape(lambda: _connection_metrics(connection_stats)))
        if follow_stats is not None:
            self.registry.register(AtScrape(lambda: _follow_metrics(follow_stats)))
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
