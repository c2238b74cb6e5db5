"""The aiohttp application: its parts, its middlewares, its start and stop."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from app.config import Config
from app.security import auth, csrf
from app.security.auth import Auth
from app.queue_runner import QueueRunner
from app.service import JobService
from app.storage.redis_cancel import RedisCancelSignals
from app.storage.redis_queue import RedisQueue
from app.storage.redis_store import RedisStore
from app.storage.sqlite_store import SqliteStore
from app.storage.store import StoreUnavailable
from app.web import cors, events, jobs, misc, static
from app.web.body_limits import body_limits_middleware, too_large
from app.web.connections import CONNECTIONS, ConnectionStats, guard_of
from app.web.errors import ApiError, json_error, store_error
from app.web.hub import Hub, Watcher
from app.web.keys import AUTH, CONFIG, HUB, METRICS, REDIS, RUNNER, SERVICE, STORE
from app.web.metrics import Metrics
from app.web.redis_follow import RedisFollower
from app.workers.worker import Worker, WorkerSettings
from saga.runner import JobRunner

log = logging.getLogger(__name__)
DB_FILE = "timetabler.sqlite3"
RETENTION_EVERY = 300.0  # seconds between two retention passes (at most)
RETENTION: web.AppKey[asyncio.Task[None]] = web.AppKey("retention")


@dataclass(frozen=True)
class Shared:
    """A web instance's Redis connections besides the store's."""

    follower: RedisFollower
    queue: RedisQueue
    cancels: RedisCancelSignals

    async def close(self) -> None:
        await self.follower.close()
        await self.queue.close()
        await self.cancels.close()


class AccessLogger(AbstractAccessLogger):
    """Logs the path without its query: a login link carries the token in `?token=`."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %s %.3fs", request.remote, request.method, request.path, response.status, time)


@web.middleware
async def error_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Every error leaves as JSON `{"error", "detail"}`; unexpected ones are logged, not shown."""
    try:
        return await handler(request)
    except ApiError as err:
        return err.response()
    except StoreUnavailable as err:
        return store_error(err).response()
    except web.HTTPRequestEntityTooLarge:
        return too_large(request.app[CONFIG].max_body)
    except web.HTTPException as err:
        if err.status < 400:
            raise
        headers = {k: v for k, v in err.headers.items() if k.lower() == "allow"}
        return json_error(err.status, err.reason.lower().replace(" ", "_"), f"{err.reason}: {request.method} {request.path}", headers)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return json_error(500, "internal_error", "Something went wrong on the server; the error has been logged.")


def create_app(config: Config, auth_: Auth | None = None) -> web.Application:
    """The app for `config`; `auth_` defaults to the one the data dir and config describe."""
    app = web.Application(
        client_max_size=config.max_body,
        middlewares=[error_middleware, body_limits_middleware, cors.preflight_middleware, csrf.csrf_middleware, auth.auth_middleware],
    )
    app[CONNECTIONS] = guard = guard_of(config.max_connections, config.max_connections_per_client)
    app[CONFIG] = config
    if config.redis is None:
        _embedded(app, config, guard.stats)
    else:
        _shared(app, config, guard.stats, config.redis)
    app[AUTH] = auth_ or Auth.from_config(config)[0]

    app.on_startup.append(_start)
    auth.setup(app, config)  # sessions on the store; forgets expired ones once the store is up
    app.on_shutdown.append(events.close_streams)
    app.on_cleanup.append(_stop)
    app.on_response_prepare.append(cors.add_headers)
    _routes(app)
    return app


def _hub(config: Config, watcher: Watcher | None = None) -> Hub:
    return Hub(max_subscribers=config.max_streams or None, max_per_user=config.max_streams_per_user or None,
               heartbeat=config.heartbeat, watcher=watcher)


def _embedded(app: web.Application, config: Config, connections: ConnectionStats) -> None:
    """One process: SQLite in the data dir, the hub fed by this process's runner."""
    store = SqliteStore(config.data_dir / DB_FILE, keep_events=config.event_log)
    hub = _hub(config)
    metrics = Metrics(hub.stats, connections)
    service = JobService(store, hub, metrics)
    service.runner = runner = JobRunner(service, service, slots=config.slots)
    app[STORE], app[HUB], app[METRICS], app[SERVICE], app[RUNNER] = store, hub, metrics, service, runner


def _shared(app: web.Application, config: Config, connections: ConnectionStats, url: str) -> None:
    """Redis: jobs, events and sessions shared with other instances; workers solve (this
    instance too, with --slots N); the hub fed by one reader per watched job's stream."""
    store = RedisStore.from_url(url, keep_events=config.event_log, session_ttl=config.session_lifetime)
    follower = RedisFollower.from_url(url)
    hub = _hub(config, follower)
    follower.hub = hub
    metrics = Metrics(hub.stats, connections, follow_stats=follower.stats)
    service = JobService(store, None, metrics, count_active=store.active_jobs)
    queue, cancels = RedisQueue.from_url(url), RedisCancelSignals.from_url(url)
    worker = None
    if config.slots:
        settings = WorkerSettings(f"{socket.gethostname()}:{os.getpid()}", config.slots, config.lease, config.max_attempts)
        worker = Worker(store, queue, cancels, settings)
    service.runner = runner = QueueRunner(service, store, queue, cancels, worker)
    app[STORE], app[HUB], app[METRICS], app[SERVICE], app[RUNNER] = store, hub, metrics, service, runner
    app[REDIS] = Shared(follower, queue, cancels)


def _routes(app: web.Application) -> None:
    app.router.add_post("/api/session", auth.login)
    app.router.add_delete("/api/session", auth.logout)
    jobs.setup(app)
    app.router.add_get("/api/jobs/{id}/events", events.stream)
    misc.setup(app)
    static.setup(app)


async def _retention(app: web.Application) -> None:
    """Cut ended jobs' logs and delete old jobs, now and then (every instance may: it is idempotent)."""
    config = app[CONFIG]
    while True:
        now = time.time()
        try:
            cut, gone = await app[STORE].prune(now - config.event_retention, now - config.job_retention)
            if cut or gone:
                log.info("retention: %d event logs cut to their final event, %d jobs deleted", cut, gone)
        except StoreUnavailable as err:
            log.warning("retention: skipped, %s", err.reason)
        await asyncio.sleep(min(RETENTION_EVERY, config.event_retention / 2))


async def _start(app: web.Application) -> None:
    await app[STORE].connect()
    app[RETENTION] = asyncio.get_running_loop().create_task(_retention(app), name="retention")
    if app[CONFIG].redis is None:
        await app[SERVICE].recover(app[CONFIG].max_attempts)  # with Redis, workers' janitors do
        return
    await app[REDIS].queue.connect()
    runner = app[RUNNER]
    assert isinstance(runner, QueueRunner)
    runner.start()


async def _stop(app: web.Application) -> None:
    app[RETENTION].cancel()
    await app[RUNNER].close()
    if app[CONFIG].redis is not None:
        await app[REDIS].close()
    await app[STORE].close()
