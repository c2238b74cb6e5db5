"""What the web edge keeps about jobs, and the storage Protocol behind it.

`SqliteStore` (app/storage/sqlite_store.py) is the embedded implementation, `RedisStore`
(app/storage/redis_store.py) the shared one; handlers and the SSE stream depend only on this
Protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from saga.events import TERMINAL, ProgressEvent

if TYPE_CHECKING:
    from saga.jobs import JobOutcome
    from solver.evaluate import Cost


# Seconds between two tries of a write the store refused: doubling from the first to the longest.
RETRY_FIRST, RETRY_MAX = 0.1, 2.0


# What kind of refusal a StoreUnavailable is: the web edge answers DISK_FULL with 507, the
# others with 503 and Retry-After.
DISK_FULL, LOCKED, UNWRITABLE = "disk_full", "locked", "unwritable"
RETRY_AFTER = 5  # seconds a client is told to wait before trying a refused write again


class StoreUnavailable(Exception):
    """A write the store cannot make now: the disk is full, the database is locked, an I/O
    error. A plain exception: the store knows nothing of HTTP; the web edge's error middleware
    (app/web/errors.py, `store_error`) answers it 507 (disk full) or 503 in JSON, never a 500.
    `append_event` and `save_result` raise it after keeping the write in memory: readers see
    it at once, and the store retries it in order until it lands."""

    def __init__(self, kind: str, reason: str, *, retry_after: int = RETRY_AFTER) -> None:
        self.kind, self.reason, self.retry_after = kind, reason, retry_after  # DISK_FULL | LOCKED | UNWRITABLE
        self.detail = f"The service cannot save anything now: {reason}"  # one readable sentence
        super().__init__(self.detail)


class StaleWrite(Exception):
    """A write from an attempt that a newer one has replaced: an event or a result whose
    attempt is older than the job's, or an event whose seq the job's log has passed. The
    store refuses it (RedisStore; several workers may hold the same job) and nothing changes."""


@dataclass(frozen=True)
class JobRecord:
    id: str
    owner: str
    name: str
    status: str  # saga.events QUEUED | RUNNING | COMPLETED | FAILED | CANCELLED
    created_at: float  # unix seconds
    time_limit: float  # seconds
    seed: int
    attempt: int  # 1 for the first run, +1 per restart after an interruption
    instance_ctt: str  # the instance as .ctt text, enough to run the job again
    last_seq: int  # seq of the newest stored event, 0 before the first
    # The pre-solve check's warnings (solver.check), one line each. Keep it the last field:
    # app/storage/sqlite_store.py keeps it as JSON, and rows stored before it existed read back ().
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobHead:
    """The few fields an event stream's connect needs: who may see the job, where its log
    ends. Read without the instance text, so that thousands of connects stay cheap."""

    id: str
    owner: str
    status: str
    last_seq: int


@dataclass(frozen=True)
class StoredEvent:
    """One event as the job's log keeps it: `data` is the event's JSON
    (ProgressEvent.to_json), sent to a resuming SSE client as it is, never re-encoded."""

    seq: int
    status: str
    data: str

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def event(self) -> ProgressEvent:
        return ProgressEvent.from_json(self.data)


@dataclass(frozen=True)
class ResultSummary:
    """What a job snapshot shows of its stored result, read without parsing the instance
    (the job list is polled; parsing every listed job's instance would stall the loop)."""

    status: str
    cost: Cost | None
    lectures: int | None  # lectures in the timetable; None without one
    unplaced: int | None  # of them without a period; None without a timetable


@dataclass(frozen=True)
class SessionRecord:
    """A login session as stored (app/security/sessions.py); the cookie's value itself is never stored."""

    key: str  # SHA-256 of the cookie value, so a copy of the database opens no sessions
    user: str
    token_fp: str  # HMAC of the token it was opened with: when that token goes, so does the session
    created_at: float  # unix seconds; the absolute lifetime counts from here
    seen_at: float  # unix seconds of the last use (refreshed at most every SessionPolicy.touch_every)


class SessionStore(Protocol):
    """Sessions live with the jobs so that they survive restarts and every instance shares them."""

    async def put_session(self, session: SessionRecord) -> None: ...

    async def get_session(self, key: str) -> SessionRecord | None: ...

    async def touch_session(self, key: str, seen_at: float) -> None: ...

    async def delete_session(self, key: str) -> None: ...

    async def prune_sessions(self, seen_before: float, created_before: float, token_fps: frozenset[str]) -> int:
        """Delete sessions idle since `seen_before`, opened before `created_before`, or opened
        with a token whose fingerprint is not in `token_fps`; how many went."""
        ...


class Store(SessionStore, Protocol):
    async def create_job(self, job: JobRecord) -> None: ...

    async def get_job(self, job_id: str) -> JobRecord | None: ...

    async def job_head(self, job_id: str) -> JobHead | None:
        """The job's owner, status and last seq, without its instance; never waits behind writes."""
        ...

    async def list_jobs(self, owner: str | None, limit: int, offset: int) -> tuple[list[JobRecord], int]:
        """Newest first, with the total count; `owner` None lists everyone's (admin)."""
        ...

    async def append_event(self, event: ProgressEvent) -> None:
        """Store the event and move the job's status, attempt and last_seq along with it.
        Raises StoreUnavailable when it is only kept in memory for now (and retried)."""
        ...

    async def events_after(self, job_id: str, seq: int) -> list[StoredEvent] | None:
        """Events with seq > `seq`, oldest first, as stored; None when the bounded log no
        longer holds seq+1. Never waits behind writes."""
        ...

    async def latest_event(self, job_id: str) -> ProgressEvent | None: ...

    async def prune(self, logs_ended_before: float, jobs_ended_before: float) -> tuple[int, int]:
        """Retention (unix times): the logs of jobs ended before the first are cut to their
        final event; jobs ended before the second go, with their logs and results.
        Returns (logs cut, jobs deleted)."""
        ...

    async def save_result(self, outcome: JobOutcome) -> None: ...

    async def landed(self, job_id: str) -> None:
        """Return once every event and result of the job this process wrote is stored (kept
        writes wait for the store to take them again)."""
        ...

    async def get_result(self, job_id: str) -> JobOutcome | None: ...

    async def get_result_summary(self, job_id: str) -> ResultSummary | None: ...

    async def unfinished_jobs(self) -> list[JobRecord]:
        """Jobs queued or running, i.e. interrupted when read at startup."""
        ...

    async def ping(self) -> bool: ...

    async def write_problem(self) -> str | None:
        """None when a write lands now; else why not, in words (for /api/health). While
        writes are kept in memory (see StoreUnavailable) that is a problem too."""
        ...

    async def close(self) -> None: ...
