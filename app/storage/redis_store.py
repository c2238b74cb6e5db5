"""`Store` on Redis: what several web instances and solver workers share.

Keys are named in app/storage/redis_keys.py. A job is a hash; the job list, sorted sets by
creation time (everyone's, one per owner, the unfinished). A job's event log is a stream
whose entry ids are the events' seqs (`<seq>-0`), so a resuming client's Last-Event-ID is a
stream position: `events_after(seq)` is `XRANGE (seq-0 +`. `MAXLEN ~ keep_events` bounds the
log cheaply (Redis drops whole nodes, so it holds keep_events or somewhat more); once it has
dropped any (XINFO's entries-added, Redis >= 7.0), a log whose first entry is past seq+1 answers
None.

Several processes may hold one job (a worker that lost its lease and the one that took it
over), so the writes that move a job are Lua scripts fenced by attempt: an event from an older
attempt, or one whose seq the log has passed, or an older attempt's result, is refused
(StaleWrite), and the entry and the job's status / attempt / last_seq move at once.

Redis unreachable (or refusing writes): every call raises StoreUnavailable, so the web edge
answers 503. Events and results are kept in memory first (app/storage/kept_writes.py, as the
SQLite store does for a full disk): readers of this process see them, and they are retried,
in order, until Redis takes them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, fields
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.storage import redis_keys as keys
from app.storage.kept_writes import KeptWrites
from app.storage.redis_connection import Reach, command_client
from app.storage.result_codec import Timetables, cost_json, cost_of, stage_costs_json, stage_costs_of, summary
from app.storage.store import JobHead, JobRecord, ResultSummary, SessionRecord, StaleWrite, StoredEvent, StoreUnavailable
from app.storage.unsaved import Write
from saga.events import QUEUED, RUNNING, ProgressEvent
from saga.jobs import JobOutcome

log = logging.getLogger(__name__)

# The client's timeouts and retries, and what counts as Redis refusing writes for now:
# app/storage/redis_connection.py (shared with the queue).
# A session's hash expires this long after it was opened: SessionPolicy.lifetime (7 days),
# after which it is dead anyway. The one who wires the store passes the configured lifetime.
SESSION_TTL = 7 * 24 * 3600.0

# KEYS: job hash, event stream, unfinished jobs, ended jobs, untrimmed logs. ARGV: seq, attempt,
# status, data, keep, terminal (1/0), now (a terminal event enters the retention sets at that time);
# for a place-in-line update also KEYS queue entries, queue and ARGV the queue's group, job id.
# A reason (string) when refused, nil when stored. Nothing follows a job's terminal event
# (a late position update or a stopped run's write must not reopen an ended job). A job without a hash (not created, or lost
# with a Redis that kept no data) still gets its log, as SQLite's UPDATE of no row does.
APPEND_EVENT = """
local seq, attempt = tonumber(ARGV[1]), tonumber(ARGV[2])
local job = redis.call('HMGET', KEYS[1], 'attempt', 'last_seq', 'created_at', 'id', 'status')
if job[1] and attempt < tonumber(job[1]) then
  return "attempt " .. ARGV[2] .. " is older than the job's attempt " .. job[1]
end
if job[5] == 'completed' or job[5] == 'failed' or job[5] == 'cancelled' then
  return "the job has ended (" .. job[5] .. "): its end is final"
end
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
local last = math.max(tonumber(job[2] or 0), top and tonumber(string.match(top[1], '^%d+')) or 0)
if seq <= last then
  return "seq " .. ARGV[1] .. " is not after the log's last seq " .. last
end
if ARGV[8] then  -- a place-in-line update: only while the job waits unclaimed, and next in its log
  local entry = redis.call('HGET', KEYS[6], ARGV[9])
  if not entry or #redis.call('XRANGE', KEYS[7], entry, entry) == 0 then
    return "the job no longer waits in the queue"
  end
  if #redis.call('XPENDING', KEYS[7], ARGV[8], entry, entry, 1) > 0 then
    return "a worker has claimed the job"
  end
  if seq ~= last + 1 then
    return "another event came first"
  end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], ARGV[1] .. '-0', 'seq', ARGV[1], 'status', ARGV[3], 'data', ARGV[4])
if job[4] then
  redis.call('HSET', KEYS[1], 'status', ARGV[3], 'attempt', ARGV[2], 'last_seq', ARGV[1])
  if ARGV[6] == '1' then
    redis.call('ZREM', KEYS[3], job[4])
    redis.call('ZADD', KEYS[4], ARGV[7], job[4])
    redis.call('ZADD', KEYS[5], ARGV[7], job[4])
  else
    redis.call('ZADD', KEYS[3], job[3], job[4])
  end
end
return false
"""

# KEYS: job hash, result hash. ARGV: the outcome's attempt, then the result's field / value pairs.
SAVE_RESULT = """
local current = redis.call('HGET', KEYS[1], 'attempt')
if current and tonumber(ARGV[1]) < tonumber(current) then
  return "a result of attempt " .. ARGV[1] .. " is older than the job's attempt " .. current
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return false
"""

# KEYS: event stream. ARGV: seq. The entries after seq, oldest first; nil when the bounded log
# no longer holds seq+1 (the trim mark and the entries read at once). Trimming only ever
# drops the oldest entries, and XINFO's entries-added exceeds the length once it has dropped
# any (its max-deleted-entry-id counts XDEL only, never a trim).
EVENTS_AFTER = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
local info, about = redis.call('XINFO', 'STREAM', KEYS[1]), {}
for i = 1, #info, 2 do
  about[info[i]] = info[i + 1]
end
if about['entries-added'] > about['length'] then
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  if not first or tonumber(string.match(first[1], '^%d+')) > tonumber(ARGV[1]) + 1 then
    return false
  end
end
return redis.call('XRANGE', KEYS[1], '(' .. ARGV[1] .. '-0', '+')
"""

# KEYS: session hash. ARGV: seen_at. Only ever forward, and never brings a deleted one back.
TOUCH_SESSION = """
local seen = redis.call('HGET', KEYS[1], 'seen_at')
if seen and tonumber(seen) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'seen_at', ARGV[1])
end
"""

# KEYS: the sessions index. ARGV: seen_before, created_before, the live token fingerprints.
# The session hashes it walks are the index's members (few: one per login), named by
# redis_keys.session_key; one that expired on its own only leaves the index.
PRUNE_SESSIONS = """
local live = {}
for i = 3, #ARGV do live[ARGV[i]] = true end
local gone = 0
for _, key in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local s = redis.call('HMGET', key, 'seen_at', 'created_at', 'token_fp')
  if not s[1] then
    redis.call('ZREM', KEYS[1], key)
  elseif tonumber(s[1]) < tonumber(ARGV[1]) or tonumber(s[2]) < tonumber(ARGV[2]) or not live[s[3]] then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], key)
    gone = gone + 1
  end
end
return gone
"""


def _job_fields(job: JobRecord) -> dict[str, Any]:
    return {**asdict(job), "warnings": json.dumps(list(job.warnings))}


def _job(h: dict[str, str]) -> JobRecord:
    try:
        warnings = tuple(json.loads(h.get("warnings", "[]")))
    except ValueError:  # a damaged hash must not stop the listing or a restart
        warnings = ()
    return JobRecord(
        h["id"], h["owner"], h["name"], h["status"], float(h["created_at"]), float(h["time_limit"]),
        int(h["seed"]), int(h["attempt"]), h["instance_ctt"], int(h["last_seq"]), warnings,
    )


def _session(h: dict[str, str]) -> SessionRecord:
    return SessionRecord(h["key"], h["user"], h["token_fp"], float(h["created_at"]), float(h["seen_at"]))


def _result_fields(outcome: JobOutcome) -> dict[str, Any]:
    """The result hash; a None is no field at all (a hash holds strings only)."""
    tt = outcome.timetable
    every = {
        "status": outcome.status,
        "period": None if tt is None else json.dumps(tt.period),
        "room": None if tt is None else json.dumps(tt.room),
        "cost": cost_json(outcome.cost),
        "stage_costs": stage_costs_json(outcome.stage_costs),
        "error": outcome.error,
        "finished_at": repr(outcome.finished_at),
        "attempt": outcome.attempt,
    }
    return {name: value for name, value in every.items() if value is not None}


class RedisStore:
    def __init__(self, redis: Redis, *, keep_events: int = 1000, session_ttl: float = SESSION_TTL) -> None:
        self._redis = redis
        self._keep = keep_events
        self._session_ttl = session_ttl
        # Redis unreachable, or refusing writes for now, is StoreUnavailable (503).
        self._reach = Reach(redis, "store", log)
        self._reaching = self._reach.reaching
        self._where = self._reach.where
        self._append = redis.register_script(APPEND_EVENT)
        self._save = redis.register_script(SAVE_RESULT)
        self._events_after = redis.register_script(EVENTS_AFTER)
        self._touch = redis.register_script(TOUCH_SESSION)
        self._prune = redis.register_script(PRUNE_SESSIONS)
        self._timetables = Timetables()
        self._closed = False
        self._kept = KeptWrites(self._write_kept, lambda: not self._closed)
        self._unsaved = self._kept.unsaved

    @classmethod
    def from_url(cls, url: str, *, keep_events: int = 1000, session_ttl: float = SESSION_TTL) -> RedisStore:
        return cls(command_client(url), keep_events=keep_events, session_ttl=session_ttl)

    async def connect(self) -> None:
        """Check that Redis answers, and is new enough for the event log (XINFO's
        entries-added came with 7.0)."""
        async with self._reaching():
            version = (await self._redis.info("server"))["redis_version"]
        if int(str(version).split(".")[0]) < 7:
            raise RuntimeError(f"Redis at {self._where} is {version}; the service needs 7.0 or newer")

    async def _hashes(self, names: list[str]) -> list[dict[str, str]]:
        """The hashes `names`, read in one round trip; those gone are left out."""
        async with self._reaching():
            async with self._redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(name)
                found = await pipe.execute()
        return [h for h in found if h]

    # Jobs

    async def create_job(self, job: JobRecord) -> None:
        async with self._reaching():
            async with self._redis.pipeline(transaction=True) as tx:
                tx.hset(keys.job_key(job.id), mapping=_job_fields(job))
                tx.zadd(keys.JOBS_BY_CREATED, {job.id: job.created_at})
                tx.zadd(keys.jobs_by_owner(job.owner), {job.id: job.created_at})
                if job.status in (QUEUED, RUNNING):
                    tx.zadd(keys.JOBS_UNFINISHED, {job.id: job.created_at})
                await tx.execute()

    async def get_job(self, job_id: str) -> JobRecord | None:
        found = await self._hashes([keys.job_key(job_id)])
        return self._unsaved.job(_job(found[0])) if found else None

    async def job_head(self, job_id: str) -> JobHead | None:
        async with self._reaching():
            owner, status, last_seq = await self._redis.hmget(keys.job_key(job_id), ["owner", "status", "last_seq"])
        if owner is None:
            return None
        return self._unsaved.head(JobHead(job_id, owner, status, int(last_seq)))

    async def list_jobs(self, owner: str | None, limit: int, offset: int) -> tuple[list[JobRecord], int]:
        # Newest first; jobs created in the same instant come in reverse order of their ids.
        index = keys.JOBS_BY_CREATED if owner is None else keys.jobs_by_owner(owner)
        async with self._reaching():
            async with self._redis.pipeline(transaction=True) as tx:
                tx.zrevrange(index, offset, offset + limit - 1)
                tx.zcard(index)
                ids, total = await tx.execute()
        jobs = await self._hashes([keys.job_key(i) for i in ids]) if limit > 0 else []
        return [self._unsaved.job(_job(h)) for h in jobs], total

    async def active_jobs(self, owner: str) -> int:
        """The owner's queued and running jobs, read without their instances (every submission asks)."""
        async with self._reaching():
            ids = await self._redis.zrange(keys.JOBS_UNFINISHED, 0, -1)
            async with self._redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hmget(keys.job_key(job_id), ["owner", "status", "last_seq"])
                rows = await pipe.execute()
        heads = [self._unsaved.head(JobHead(i, o, st, int(seq))) for i, (o, st, seq) in zip(ids, rows) if o is not None]
        return sum(1 for h in heads if h.owner == owner and h.status in (QUEUED, RUNNING))

    async def unfinished_jobs(self) -> list[JobRecord]:
        async with self._reaching():
            ids = await self._redis.zrange(keys.JOBS_UNFINISHED, 0, -1)
        jobs = [self._unsaved.job(_job(h)) for h in await self._hashes([keys.job_key(i) for i in ids])]
        return [j for j in jobs if j.status in (QUEUED, RUNNING)]

    # Events and results: kept in memory when Redis refuses them, and retried.

    async def append_event(self, event: ProgressEvent) -> None:
        """Raises StaleWrite when the job has moved past the event (see APPEND_EVENT)."""
        await self._kept.write(event)

    async def landed(self, job_id: str) -> None:
        await self._kept.landed(job_id)

    async def save_result(self, outcome: JobOutcome) -> None:
        """Raises StaleWrite when the outcome's attempt is older than the job's."""
        await self._kept.write(outcome)

    async def append_while_waiting(self, event: ProgressEvent) -> None:
        """Append a queued job's place-in-line update, only while it waits unclaimed in the queue
        and no other event came first (else StaleWrite: the update has lost its point). Never kept."""
        async with self._reaching():
            refused = await self._append_event(event, keys.QUEUE_ENTRIES, keys.QUEUE, keys.QUEUE_GROUP, event.job_id)
        if refused is not None:
            raise StaleWrite(f"job {event.job_id}: {refused}")

    async def _append_event(self, event: ProgressEvent, *waiting: str) -> str | None:
        return await self._append(
            keys=[keys.job_key(event.job_id), keys.events_key(event.job_id), keys.JOBS_UNFINISHED,
                  keys.JOBS_ENDED, keys.LOGS_UNTRIMMED, *waiting[:2]],
            args=[event.seq, event.attempt, event.status, event.to_json(), self._keep, int(event.terminal),
                  repr(time.time()), *waiting[2:]],
        )

    async def _write_kept(self, write: Write) -> None:
        async with self._reaching():
            if isinstance(write, ProgressEvent):
                refused = await self._append_event(write)
            else:
                pairs = [part for item in _result_fields(write).items() for part in item]
                refused = await self._save(keys=[keys.job_key(write.job_id), keys.result_key(write.job_id)],
                                           args=[write.attempt, *pairs])
        if refused is not None:
            raise StaleWrite(f"job {write.job_id}: {refused}")

    async def prune(self, logs_ended_before: float, jobs_ended_before: float) -> tuple[int, int]:
        """Retention: the logs of jobs ended before `logs_ended_before` are cut to their last
        event; jobs ended before `jobs_ended_before` are deleted with all they hold."""
        async with self._reaching():
            trim = await self._redis.zrangebyscore(keys.LOGS_UNTRIMMED, "-inf", logs_ended_before)
            gone = await self._redis.zrangebyscore(keys.JOBS_ENDED, "-inf", jobs_ended_before)
            owners = [h.get("owner") for h in await self._hashes([keys.job_key(i) for i in gone])]
            async with self._redis.pipeline(transaction=False) as pipe:
                for job_id in trim:
                    pipe.xtrim(keys.events_key(job_id), maxlen=1, approximate=False)
                    pipe.zrem(keys.LOGS_UNTRIMMED, job_id)
                for job_id, owner in zip(gone, owners):
                    pipe.delete(keys.job_key(job_id), keys.events_key(job_id), keys.result_key(job_id))
                    pipe.zrem(keys.JOBS_BY_CREATED, job_id)
                    pipe.zrem(keys.JOBS_ENDED, job_id)
                    pipe.zrem(keys.LOGS_UNTRIMMED, job_id)
                    if owner:
                        pipe.zrem(keys.jobs_by_owner(owner), job_id)
                await pipe.execute()
        return len(trim), len(gone)

    async def events_after(self, job_id: str, seq: int) -> list[StoredEvent] | None:
        async with self._reaching():
            entries = await self._events_after(keys=[keys.events_key(job_id)], args=[seq])
        stored = None if entries is None else [self._stored(values) for _, values in entries]
        return self._unsaved.events_after(job_id, seq, stored)

    @staticmethod
    def _stored(values: list[str]) -> StoredEvent:
        entry = dict(zip(values[::2], values[1::2]))  # a script's reply: the fields as a flat list
        return StoredEvent(int(entry["seq"]), entry["status"], entry["data"])

    async def latest_event(self, job_id: str) -> ProgressEvent | None:
        # A job's kept events are newer than all it has stored (they queue behind each other),
        # so while Redis is away the newest of them is the answer, from memory.
        kept = self._unsaved.newest_event(job_id, None)
        if kept is not None:
            return kept
        async with self._reaching():
            newest = await self._redis.xrevrange(keys.events_key(job_id), count=1)
        return ProgressEvent.from_json(newest[0][1]["data"]) if newest else None

    async def get_result(self, job_id: str) -> JobOutcome | None:
        kept = self._unsaved.result(job_id)
        if kept is not None:
            return kept
        async with self._reaching():
            async with self._redis.pipeline(transaction=True) as tx:
                tx.hgetall(keys.result_key(job_id))
                tx.hmget(keys.job_key(job_id), ["instance_ctt", "name"])
                r, (ctt, name) = await tx.execute()
        if not r or ctt is None:  # as in SQLite: a result is read with its job
            return None
        period = r.get("period")
        timetable = None if period is None else await self._timetables.rebuild(job_id, ctt, name, period, r["room"])
        return JobOutcome(
            job_id, r["status"], timetable, cost_of(r.get("cost")), stage_costs_of(r["stage_costs"]),
            r.get("error"), float(r["finished_at"]), int(r.get("attempt", 1)),
        )

    async def get_result_summary(self, job_id: str) -> ResultSummary | None:
        kept = self._unsaved.result_summary(job_id)
        if kept is not None:
            return kept
        async with self._reaching():
            status, period, cost = await self._redis.hmget(keys.result_key(job_id), ["status", "period", "cost"])
        return None if status is None else summary(status, period, cost)

    # Health

    async def ping(self) -> bool:
        if self._closed:
            return False
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def write_problem(self) -> str | None:
        """Kept writes are tried now; then a write of one key proves Redis takes one."""
        kept = await self._kept.problem()
        if kept is not None:
            return kept
        if self._closed:
            return "the store is closed."
        try:
            async with self._reaching():
                await self._redis.set(keys.WRITE_PROBE, repr(time.time()))
        except StoreUnavailable as err:
            return err.reason
        except RedisError as err:
            return f"Redis at {self._where} cannot be written ({err})."
        return None

    # Sessions (app/security/sessions.py): one hash each, expiring when its lifetime ends.

    async def put_session(self, session: SessionRecord) -> None:
        name = keys.session_key(session.key)
        async with self._reaching():
            async with self._redis.pipeline(transaction=True) as tx:
                tx.delete(name)
                tx.hset(name, mapping={f.name: getattr(session, f.name) for f in fields(SessionRecord)})
                tx.expireat(name, int(session.created_at + self._session_ttl) + 1)
                tx.zadd(keys.SESSIONS, {name: session.created_at})
                await tx.execute()

    async def get_session(self, key: str) -> SessionRecord | None:
        found = await self._hashes([keys.session_key(key)])
        return _session(found[0]) if found else None

    async def touch_session(self, key: str, seen_at: float) -> None:
        async with self._reaching():
            await self._touch(keys=[keys.session_key(key)], args=[repr(seen_at)])

    async def delete_session(self, key: str) -> None:
        name = keys.session_key(key)
        async with self._reaching():
            async with self._redis.pipeline(transaction=True) as tx:
                tx.delete(name)
                tx.zrem(keys.SESSIONS, name)
                await tx.execute()

    async def prune_sessions(self, seen_before: float, created_before: float, token_fps: frozenset[str]) -> int:
        async with self._reaching():
            return int(await self._prune(keys=[keys.SESSIONS], args=[repr(seen_before), repr(created_before), *token_fps]))

    async def close(self) -> None:
        self._closed = True
        await self._kept.close(self._reach.failing)
        await self._redis.aclose()
