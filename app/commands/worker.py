"""`timetabler worker --redis URL [--slots N]`: a solver worker, no HTTP.

It takes jobs from the Redis queue that web instances (`serve --redis URL`) fill, runs each
in a child process as `serve` does, and writes progress and results to Redis, where every
web instance reads them. Stop it with SIGTERM or Ctrl-C: its running jobs' claims lapse
and another worker takes them over after `--lease` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from aiohttp import web

from app.config import Config
from app.storage.redis_cancel import RedisCancelSignals
from app.storage.redis_queue import RedisQueue
from app.storage.redis_store import RedisStore
from app.workers.health import health_app
from app.workers.worker import Worker, WorkerSettings

log = logging.getLogger(__name__)


def consumer_name() -> str:
    """This worker's name in the queue's consumer group: unique per process and machine."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def work(config: Config, url: str) -> None:
    store = RedisStore.from_url(url, keep_events=config.event_log, session_ttl=config.session_lifetime)
    queue, cancels = RedisQueue.from_url(url), RedisCancelSignals.from_url(url)
    slots = config.slots or os.cpu_count() or 1
    worker = Worker(store, queue, cancels, WorkerSettings(consumer_name(), slots, config.lease, config.max_attempts))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await store.connect()
    await queue.connect()
    site = None
    if config.metrics_port:
        site = web.AppRunner(health_app(worker, queue, cancels, store), access_log=None)
        await site.setup()
        await web.TCPSite(site, config.host, config.metrics_port).start()
    log.info("worker %s: %d slots, lease %g s, up to %d attempts per job", consumer_name(), slots, config.lease,
             config.max_attempts)
    try:
        await worker.run(stop)
    finally:
        if site is not None:
            await site.cleanup()
        await queue.close()
        await cancels.close()
        await store.close()


def run(config: Config) -> None:
    asyncio.run(work(config, config.redis or ""))
