"""Places in line for jobs waiting in the shared queue, told in their own event logs.

A job's place changes when one ahead of it leaves the line: claimed by a worker, or
cancelled. Whoever made it leave tells the jobs behind, as an embedded runner does. Each
update is written only while its job still waits unclaimed and nothing else was written
to its log meanwhile (the store checks both at once), so an update can never collide with
the claiming worker's first event or a cancel; a lost race only means a later update tells it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from app.storage.queue import JobQueue
from app.storage.redis_store import RedisStore
from app.storage.store import StaleWrite, StoreUnavailable
from saga.events import QUEUED
from saga.reporter import waiting_message

log = logging.getLogger(__name__)
TOLD = 100  # the first jobs in line are told; the rest learn theirs as the line moves up


async def tell_positions(store: RedisStore, queue: JobQueue) -> None:
    try:
        places = await queue.positions()
        for job_id, place in list(places.items())[:TOLD]:
            latest = await store.latest_event(job_id)
            if latest is None or latest.status != QUEUED or latest.queue_position == place:
                continue
            update = replace(latest, seq=latest.seq + 1, queue_position=place, message=waiting_message(place),
                             updated_at=time.time())
            try:
                await store.append_while_waiting(update)
            except StaleWrite:
                continue  # claimed, cancelled, or another update came first
    except StoreUnavailable as err:
        log.warning("places in line not told: %s", err.reason)
