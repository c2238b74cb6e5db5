"""Every Redis key the service uses, named in this one place.

Several web instances and solver workers share one Redis: a key spelt twice is a key that
drifts apart. All of them start with PREFIX, so that the service can share a Redis with
others and `SCAN timetabler:*` finds all it holds.
"""

from __future__ import annotations

PREFIX = "timetabler:"

# Sorted sets of job ids scored by created_at: the job list, everyone's and one owner's.
JOBS_BY_CREATED = f"{PREFIX}jobs:by-created"
# Jobs queued or running, scored by created_at: what a start-up finds interrupted.
JOBS_UNFINISHED = f"{PREFIX}jobs:unfinished"
# Ended jobs scored by when they ended: what retention deletes after --job-retention.
JOBS_ENDED = f"{PREFIX}jobs:ended"
# Ended jobs whose event log is still whole, scored by when they ended: what retention cuts
# to the final event after --event-retention.
LOGS_UNTRIMMED = f"{PREFIX}jobs:logs-untrimmed"
# Sorted set of session_key() names scored by created_at: what prune_sessions walks.
SESSIONS = f"{PREFIX}sessions"
# One string rewritten by write_problem: a write that lands proves Redis takes writes.
WRITE_PROBE = f"{PREFIX}write-probe"
# Stream: the job queue (app/storage/redis_queue.py), one entry per queued or running job,
# fields job_id; read by the one consumer group QUEUE_GROUP (a group's name, not a key).
QUEUE = f"{PREFIX}queue"
QUEUE_GROUP = "workers"
# Hash: job_id -> its QUEUE entry's id, so that a job can be found (and removed) by its id.
QUEUE_ENTRIES = f"{PREFIX}queue:entries"
# Pub/sub channel: job ids whose cancel was asked (a channel's name, not a key).
CANCEL_CHANNEL = f"{PREFIX}cancels"


def jobs_by_owner(owner: str) -> str:
    return f"{PREFIX}jobs:by-owner:{owner}"


def job_key(job_id: str) -> str:
    """Hash: the JobRecord's fields (warnings as a JSON list)."""
    return f"{PREFIX}job:{job_id}"


def events_key(job_id: str) -> str:
    """Stream: the job's event log; entry id `<seq>-0`, fields seq, status, data."""
    return f"{PREFIX}job:{job_id}:events"


def result_key(job_id: str) -> str:
    """Hash: the JobOutcome (costs and timetable arrays as JSON)."""
    return f"{PREFIX}job:{job_id}:result"


def session_key(key: str) -> str:
    """Hash: a SessionRecord, expiring; `key` is already the cookie's SHA-256."""
    return f"{PREFIX}session:{key}"


def cancel_key(job_id: str) -> str:
    """String, expiring: set once a cancel of the job is asked, for workers that missed the message."""
    return f"{PREFIX}job:{job_id}:cancel"


def secret_key(name: str) -> str:
    """String: a generated secret every instance shares (admin-token, session-secret)."""
    return f"{PREFIX}secret:{name}"
