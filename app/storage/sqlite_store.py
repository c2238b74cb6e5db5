"""`Store` on SQLite: one file in the data dir, WAL mode, one transaction per write.

sqlite3 blocks, so one worker thread owns the writing connection and every write runs
there; the event loop only awaits. Serialising through one thread also orders the writes.
The reads an event stream's connect makes (`job_head`, `events_after`) run on a second,
read-only connection in a thread of its own: WAL lets it read while a write is under way,
so a thousand connects a second never queue behind the solver's progress writes.

A write that fails (disk full, database locked, I/O error) raises StoreUnavailable. Events
and results are kept in memory first (app/storage/kept_writes.py): readers see them at once,
and a retry task writes them, in order, once the database takes writes again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import astuple, fields
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from app.storage.kept_writes import KeptWrites
from app.storage.result_codec import Timetables, cost_json, cost_of, stage_costs_json, stage_costs_of, summary
from app.storage.sqlite_errors import unavailable
from app.storage.store import JobHead, JobRecord, ResultSummary, SessionRecord, StoredEvent, StoreUnavailable
from app.storage.unsaved import Write
from saga.events import QUEUED, RUNNING, TERMINAL, ProgressEvent
from saga.jobs import JobOutcome

T = TypeVar("T")
log = logging.getLogger(__name__)
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
    created_at REAL NOT NULL, time_limit REAL NOT NULL, seed INTEGER NOT NULL,
    attempt INTEGER NOT NULL, instance_ctt TEXT NOT NULL, last_seq INTEGER NOT NULL,
    trimmed_seq INTEGER NOT NULL DEFAULT 0,  -- events up to here were dropped from the log
    warnings TEXT NOT NULL DEFAULT '[]'  -- JSON list of the pre-solve check's warnings
);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner, created_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT PRIMARY KEY, status TEXT NOT NULL, period TEXT, room TEXT, cost TEXT,
    stage_costs TEXT NOT NULL, error TEXT, finished_at REAL NOT NULL
);
"""
JOB_COLUMNS = ", ".join(f.name for f in fields(JobRecord))
# Columns added to `jobs` after the first release: a database made before gets them, with
# the default for the jobs it already holds.
ADDED_JOB_COLUMNS = {"warnings": "TEXT NOT NULL DEFAULT '[]'"}
SESSIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY, user TEXT NOT NULL, token_fp TEXT NOT NULL,
    created_at REAL NOT NULL, seen_at REAL NOT NULL
);
"""
SESSION_COLUMNS = ", ".join(f.name for f in fields(SessionRecord))
# One row, rewritten by /api/health: a write that lands proves the disk takes writes.
PROBE_SCHEMA = "CREATE TABLE IF NOT EXISTS write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL)"


def _job_row(job: JobRecord) -> tuple[Any, ...]:
    """A job's fields in JOB_COLUMNS order; the last, its warnings, as a JSON list."""
    return (*astuple(job)[:-1], json.dumps(list(job.warnings)))


def _job(row: tuple[Any, ...]) -> JobRecord:
    try:
        warnings = tuple(json.loads(row[-1]))
    except (ValueError, TypeError):  # a damaged row must not stop the listing or a restart
        warnings = ()
    return JobRecord(*row[:-1], warnings=warnings)


class SqliteStore:
    def __init__(self, path: Path, *, keep_events: int = 1000) -> None:
        self._path = path
        self._keep = keep_events
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-read")
        self._db: sqlite3.Connection | None = None
        self._read_db: sqlite3.Connection | None = None
        self._timetables = Timetables()
        self._kept = KeptWrites(lambda write: self._run(self._write_kept, write), lambda: self._db is not None)
        self._unsaved = self._kept.unsaved
        self._failing: str | None = None  # why the last write failed; None once one lands

    async def connect(self) -> None:
        await self._run(self._connect)
        await self._read(self._connect_reader)

    def _connect(self) -> None:
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit, one BEGIN..COMMIT per write.
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        db.executescript(SESSIONS_SCHEMA)
        db.execute(PROBE_SCHEMA)
        have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        for column, kind in ADDED_JOB_COLUMNS.items():
            if column not in have:
                db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
        self._db = db

    def _connect_reader(self) -> None:
        self._read_db = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, check_same_thread=False)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reader, fn, *args)

    def _read_rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        assert self._read_db is not None
        return self._read_db.execute(sql, params).fetchall()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One BEGIN..COMMIT: everything inside lands, or nothing does (StoreUnavailable)."""
        assert self._db is not None
        try:
            with self._db:  # commits on success, rolls back on error
                self._db.execute("BEGIN")
                yield self._db
        except sqlite3.OperationalError as err:
            problem = unavailable(err, self._path.parent)
            if self._failing is None:
                log.error("store: a write failed: %s", problem.reason)
            self._failing = problem.reason
            raise problem from err
        if self._failing is not None:
            log.warning("store: writes land again")
            self._failing = None

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._transaction() as db:
            db.execute(sql, params)

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        assert self._db is not None
        return self._db.execute(sql, params).fetchall()

    async def create_job(self, job: JobRecord) -> None:
        marks = ", ".join("?" * len(fields(JobRecord)))
        await self._run(self._write, f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({marks})", _job_row(job))

    async def get_job(self, job_id: str) -> JobRecord | None:
        rows = await self._run(self._rows, f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return self._unsaved.job(_job(rows[0])) if rows else None

    async def job_head(self, job_id: str) -> JobHead | None:
        rows = await self._read(self._read_rows, "SELECT id, owner, status, last_seq FROM jobs WHERE id = ?", (job_id,))
        return self._unsaved.head(JobHead(*rows[0])) if rows else None

    async def list_jobs(self, owner: str | None, limit: int, offset: int) -> tuple[list[JobRecord], int]:
        where, params = ("WHERE owner = ?", (owner,)) if owner is not None else ("", ())
        jobs, total = await self._run(self._list_jobs, where, params, limit, offset)
        return [self._unsaved.job(j) for j in jobs], total

    def _list_jobs(self, where: str, params: tuple[Any, ...], limit: int, offset: int) -> tuple[list[JobRecord], int]:
        rows = self._rows(
            f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        total = self._rows(f"SELECT COUNT(*) FROM jobs {where}", params)[0][0]
        return [_job(r) for r in rows], total

    async def append_event(self, event: ProgressEvent) -> None:
        await self._kept.write(event)

    def _write_kept(self, write: Write) -> None:
        if isinstance(write, ProgressEvent):
            self._append_event(write)
        else:
            self._save_result(write)

    def _append_event(self, event: ProgressEvent) -> None:
        first_kept = event.seq - self._keep + 1
        with self._transaction() as db:
            db.execute(
                "INSERT INTO events (job_id, seq, data) VALUES (?, ?, ?)",
                (event.job_id, event.seq, event.to_json()),
            )
            dropped = db.execute(
                "SELECT MAX(seq) FROM events WHERE job_id = ? AND seq < ?", (event.job_id, first_kept)
            ).fetchone()[0]
            db.execute("DELETE FROM events WHERE job_id = ? AND seq < ?", (event.job_id, first_kept))
            db.execute(
                "UPDATE jobs SET status = ?, attempt = ?, last_seq = ?, trimmed_seq = MAX(trimmed_seq, ?) WHERE id = ?",
                (event.status, event.attempt, event.seq, dropped or 0, event.job_id),
            )

    async def prune(self, logs_ended_before: float, jobs_ended_before: float) -> tuple[int, int]:
        return await self._run(self._prune, logs_ended_before, jobs_ended_before)

    def _prune(self, logs_ended_before: float, jobs_ended_before: float) -> tuple[int, int]:
        ended = f"SELECT job_id FROM results JOIN jobs ON jobs.id = results.job_id WHERE finished_at < ? " \
                f"AND jobs.status IN ({', '.join('?' * len(TERMINAL))})"
        with self._transaction() as db:
            gone = [r[0] for r in db.execute(ended, (jobs_ended_before, *TERMINAL))]
            for table, column in (("events", "job_id"), ("results", "job_id"), ("jobs", "id")):
                db.executemany(f"DELETE FROM {table} WHERE {column} = ?", [(j,) for j in gone])
            trim = [r[0] for r in db.execute(ended + " AND trimmed_seq < last_seq - 1", (logs_ended_before, *TERMINAL))]
            for job_id in trim:  # the log keeps its final event, the job's last word
                db.execute("DELETE FROM events WHERE job_id = ? AND seq < (SELECT last_seq FROM jobs WHERE id = ?)",
                           (job_id, job_id))
                db.execute("UPDATE jobs SET trimmed_seq = last_seq - 1 WHERE id = ?", (job_id,))
        return len(trim), len(gone)

    async def events_after(self, job_id: str, seq: int) -> list[StoredEvent] | None:
        return self._unsaved.events_after(job_id, seq, await self._read(self._events_after, job_id, seq))

    def _events_after(self, job_id: str, seq: int) -> list[StoredEvent] | None:
        assert self._read_db is not None
        with self._read_db:  # one read transaction: the trim mark and the rows agree
            trimmed = self._read_rows("SELECT trimmed_seq FROM jobs WHERE id = ?", (job_id,))
            if trimmed and seq < trimmed[0][0]:
                return None
            rows = self._read_rows(
                "SELECT seq, json_extract(data, '$.status'), data FROM events WHERE job_id = ? AND seq > ? ORDER BY seq",
                (job_id, seq),
            )
        return [StoredEvent(*r) for r in rows]

    async def latest_event(self, job_id: str) -> ProgressEvent | None:
        rows = await self._run(self._rows, "SELECT data FROM events WHERE job_id = ? ORDER BY seq DESC LIMIT 1", (job_id,))
        return self._unsaved.newest_event(job_id, ProgressEvent.from_dict(json.loads(rows[0][0])) if rows else None)

    async def landed(self, job_id: str) -> None:
        await self._kept.landed(job_id)

    async def save_result(self, outcome: JobOutcome) -> None:
        await self._kept.write(outcome)

    def _save_result(self, outcome: JobOutcome) -> None:
        tt = outcome.timetable
        params = (
            outcome.job_id,
            outcome.status,
            None if tt is None else json.dumps(tt.period),
            None if tt is None else json.dumps(tt.room),
            cost_json(outcome.cost),
            stage_costs_json(outcome.stage_costs),
            outcome.error,
            outcome.finished_at,
        )
        self._write("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)", params)

    async def get_result(self, job_id: str) -> JobOutcome | None:
        kept = self._unsaved.result(job_id)
        if kept is not None:
            return kept
        rows = await self._run(
            self._rows,
            "SELECT r.*, j.instance_ctt, j.name FROM results r JOIN jobs j ON j.id = r.job_id WHERE r.job_id = ?",
            (job_id,),
        )
        if not rows:
            return None
        _, status, period, room, cost, stage_costs, error, finished_at, ctt, name = rows[0]
        timetable = None if period is None else await self._timetables.rebuild(job_id, ctt, name, period, room)
        return JobOutcome(job_id, status, timetable, cost_of(cost), stage_costs_of(stage_costs), error, finished_at)

    async def get_result_summary(self, job_id: str) -> ResultSummary | None:
        return self._unsaved.result_summary(job_id) or await self._run(self._result_summary, job_id)

    def _result_summary(self, job_id: str) -> ResultSummary | None:
        rows = self._rows("SELECT status, period, cost FROM results WHERE job_id = ?", (job_id,))
        return summary(*rows[0]) if rows else None

    async def unfinished_jobs(self) -> list[JobRecord]:
        rows = await self._run(
            self._rows, f"SELECT {JOB_COLUMNS} FROM jobs WHERE status IN (?, ?) ORDER BY created_at", (QUEUED, RUNNING)
        )
        jobs = [self._unsaved.job(_job(r)) for r in rows]
        return [j for j in jobs if j.status in (QUEUED, RUNNING)]

    async def ping(self) -> bool:
        try:
            return (await self._run(self._rows, "SELECT 1")) == [(1,)]
        except (sqlite3.Error, RuntimeError):
            return False

    async def write_problem(self) -> str | None:
        """Kept writes are tried now; then a one-row write proves the disk takes one."""
        kept = await self._kept.problem()
        if kept is not None:
            return kept
        try:
            await self._run(self._write, "INSERT OR REPLACE INTO write_probe (id, at) VALUES (1, julianday('now'))", ())
        except StoreUnavailable as err:
            return err.reason
        except (sqlite3.Error, RuntimeError) as err:  # closed, or not connected
            return f"the database cannot be written ({err})."
        return None

    # Sessions (app/security/sessions.py): small rows, one write per login, logout and idle refresh.

    async def put_session(self, session: SessionRecord) -> None:
        await self._run(self._write, f"INSERT OR REPLACE INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                        astuple(session))

    async def get_session(self, key: str) -> SessionRecord | None:
        rows = await self._run(self._rows, f"SELECT {SESSION_COLUMNS} FROM sessions WHERE key = ?", (key,))
        return SessionRecord(*rows[0]) if rows else None

    async def touch_session(self, key: str, seen_at: float) -> None:
        await self._run(self._write, "UPDATE sessions SET seen_at = MAX(seen_at, ?) WHERE key = ?", (seen_at, key))

    async def delete_session(self, key: str) -> None:
        await self._run(self._write, "DELETE FROM sessions WHERE key = ?", (key,))

    async def prune_sessions(self, seen_before: float, created_before: float, token_fps: frozenset[str]) -> int:
        return await self._run(self._prune_sessions, seen_before, created_before, token_fps)

    def _prune_sessions(self, seen_before: float, created_before: float, token_fps: frozenset[str]) -> int:
        with self._transaction() as db:
            gone = db.execute("DELETE FROM sessions WHERE seen_at < ? OR created_at < ?", (seen_before, created_before)).rowcount
            # Few distinct tokens, so compare them here rather than bind a NOT IN list of any length.
            stale = [(fp,) for (fp,) in db.execute("SELECT DISTINCT token_fp FROM sessions") if fp not in token_fps]
            revoked = db.executemany("DELETE FROM sessions WHERE token_fp = ?", stale).rowcount if stale else 0
            return gone + revoked

    async def close(self) -> None:
        await self._kept.close(self._failing)
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        if self._read_db is not None:
            await self._read(self._read_db.close)
            self._read_db = None
        self._executor.shutdown(wait=True)
        self._reader.shutdown(wait=True)
