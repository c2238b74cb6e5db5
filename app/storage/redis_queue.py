"""`JobQueue` on Redis: one stream (redis_keys.QUEUE), read by one consumer group
(redis_keys.QUEUE_GROUP) whose consumers are the solver workers.

An entry is a job (field job_id); QUEUE_ENTRIES maps each job to its entry, so that a job
can be found by its id. `claim` is XREADGROUP `>`: the entry joins the group's pending list,
owned by the worker. `renew` resets its idle time; the janitor's `reclaim` (XAUTOCLAIM) takes
over entries idle for a lease. A claim's attempt is the entry's delivery count, which only
XREADGROUP and a takeover raise (renew uses JUSTID, which does not), so a job that waited
in line for hours has used up no attempt. `ack` and an exhausted reclaim XDEL the entry, so
the stream only ever holds jobs queued or running: an entry present and not pending is one
no worker has been given, which is what `remove` and `positions` rely on.

The checks that must not race a claim or a takeover (renew's owner, remove's "not
claimed", ack's attempt, reclaim's count) are Lua scripts. After a Redis that lost its data
the group is gone (NOGROUP): it is made again from the stream's start, and the call retried.

Redis unreachable (or refusing writes): every call raises StoreUnavailable, as the store does
(app/storage/redis_connection.py). The blocking read needs a client without a socket
timeout (redis-py 8 gives every read 5 s by default, and a longer BLOCK then fails as a
timeout); `from_url` builds one for it beside the command client.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.storage import redis_keys as keys
from app.storage.queue import Claim, Reclaimed
from app.storage.redis_connection import Reach, blocking_client, command_client

log = logging.getLogger(__name__)
T = TypeVar("T")

# A blocked read that outlasts its block by this much is on a dead connection (no socket
# timeout can tell, since it waits on purpose): it fails as StoreUnavailable.
STALL_GRACE = 5.0
RECLAIM_COUNT = 100  # pending entries one XAUTOCLAIM looks at; reclaim loops on its cursor

# KEYS: queue, entries. ARGV: job_id. The job's entry id; a job already in the queue keeps
# its place (a retried call whose reply was lost must not queue it twice).
ENQUEUE = """
local entry = redis.call('HGET', KEYS[2], ARGV[1])
if entry and #redis.call('XRANGE', KEYS[1], entry, entry) > 0 then
  return entry
end
entry = redis.call('XADD', KEYS[1], '*', 'job_id', ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], entry)
return entry
"""

# KEYS: queue. ARGV: group, consumer, entry. 1 when the entry is still pending with `consumer`
# (its idle time is now 0), 0 when it was acked or taken over: a stale worker must not steal
# back what a janitor took, which a bare XCLAIM would.
RENEW = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)[1]
if not pending or pending[2] ~= ARGV[2] then
  return 0
end
return #redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
"""

# KEYS: queue, entries. ARGV: group, entry, job_id, attempt. Forgets the entry, unless it was
# taken over since (its delivery count passed the claim's attempt): 1 when forgotten.
ACK = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)[1]
if pending and pending[4] > tonumber(ARGV[4]) then
  return 0
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('HGET', KEYS[2], ARGV[3]) == ARGV[2] then
  redis.call('HDEL', KEYS[2], ARGV[3])
end
return 1
"""

# KEYS: queue, entries. ARGV: group, consumer, min idle ms, cursor, count, max_attempts.
# One XAUTOCLAIM page: {next cursor, {{entry, job_id, attempt, exhausted 1/0}...}, {{entry,
# job_id} of entries deleted while claimed}}. Exhausted entries are removed here, at once.
RECLAIM = """
local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local claims, lost = {}, {}
for _, e in ipairs(reply[2]) do
  local id, job = e[1], nil
  for i = 1, #e[2], 2 do
    if e[2][i] == 'job_id' then job = e[2][i + 1] end
  end
  local attempt = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1][4]
  local exhausted = attempt > tonumber(ARGV[6]) or not job
  if exhausted then
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
  end
  if job then
    if exhausted then redis.call('HDEL', KEYS[2], job) end
    claims[#claims + 1] = {id, job, attempt, exhausted and 1 or 0}
  end
end
if #reply[3] > 0 then
  local gone = {}
  for _, id in ipairs(reply[3]) do gone[id] = true end
  local map = redis.call('HGETALL', KEYS[2])
  for i = 1, #map, 2 do
    if gone[map[i + 1]] then
      redis.call('HDEL', KEYS[2], map[i])
      lost[#lost + 1] = {map[i + 1], map[i]}
    end
  end
end
return {reply[1], claims, lost}
"""

# KEYS: queue, entries. ARGV: group, job_id. 1 when the job's entry was there and no worker
# had it, and is now gone; 0 otherwise.
REMOVE = """
local entry = redis.call('HGET', KEYS[2], ARGV[2])
if not entry then
  return 0
end
if #redis.call('XRANGE', KEYS[1], entry, entry) == 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  return 0
end
if #redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1) > 0 then
  return 0
end
redis.call('XDEL', KEYS[1], entry)
redis.call('HDEL', KEYS[2], ARGV[2])
return 1
"""

# KEYS: queue. ARGV: group. The job ids of the entries after the group's last-delivered-id
# (none of them given to a worker yet), oldest first, read at once.
UNCLAIMED = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
local last = '0-0'
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local about = {}
  for i = 1, #g, 2 do about[g[i]] = g[i + 1] end
  if about['name'] == ARGV[1] then last = about['last-delivered-id'] end
end
local jobs = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '(' .. last, '+')) do
  for i = 1, #e[2], 2 do
    if e[2][i] == 'job_id' then jobs[#jobs + 1] = e[2][i + 1] end
  end
end
return jobs
"""


def _group_missing(err: ResponseError) -> bool:
    return "NOGROUP" in str(err) or str(err) == "no such key"


class RedisQueue:
    """`redis` runs the commands (a command client, with timeouts); `blocking` the blocked
    reads of `claim` and must have socket_timeout=None (it defaults to `redis`, which is then
    the caller's to build so). Both must decode responses and speak RESP2 (redis-py's
    default). The queue owns them: `close` closes them."""

    def __init__(self, redis: Redis, blocking: Redis | None = None) -> None:
        self._redis = redis
        self._blocking = blocking or redis
        self._reach = Reach(redis, "queue", log)
        self._enqueue = redis.register_script(ENQUEUE)
        self._renew = redis.register_script(RENEW)
        self._ack = redis.register_script(ACK)
        self._reclaim = redis.register_script(RECLAIM)
        self._remove = redis.register_script(REMOVE)
        self._unclaimed = redis.register_script(UNCLAIMED)

    @classmethod
    def from_url(cls, url: str) -> RedisQueue:
        return cls(command_client(url), blocking_client(url))

    async def connect(self) -> None:
        """Make the stream and its group if they are not there yet."""
        async with self._reach.reaching():
            await self._make_group()

    async def _make_group(self) -> None:
        # From the stream's start, not `$`: jobs queued before any worker came are for it too.
        try:
            await self._redis.xgroup_create(keys.QUEUE, keys.QUEUE_GROUP, id="0", mkstream=True)
        except ResponseError as err:
            if not str(err).startswith("BUSYGROUP"):
                raise

    async def _call(self, command: Callable[[], Awaitable[T]]) -> T:
        """`command`, again once the group is made when Redis has none (it lost its data)."""
        async with self._reach.reaching():
            try:
                return await command()
            except ResponseError as err:
                if not _group_missing(err):
                    raise
                log.warning("queue: the consumer group is gone (Redis lost its data?); made again")
                await self._make_group()
                return await command()

    async def enqueue(self, job_id: str) -> None:
        await self._call(lambda: self._enqueue(keys=[keys.QUEUE, keys.QUEUE_ENTRIES], args=[job_id]))

    async def claim(self, consumer: str, block: float) -> Claim | None:
        """A read cancelled while blocked may have been given an entry on the way: it stays
        pending with `consumer` and a janitor reclaims it after the lease (as attempt 2)."""
        block_ms = max(1, round(block * 1000))  # BLOCK 0 would wait forever

        async def read() -> Any:
            return await asyncio.wait_for(
                self._blocking.xreadgroup(keys.QUEUE_GROUP, consumer, {keys.QUEUE: ">"}, count=1, block=block_ms),
                block + STALL_GRACE,
            )

        for _, entries in await self._call(read) or ():
            for entry, fields in entries:
                return Claim(fields["job_id"], 1, entry)
        return None

    async def renew(self, claim: Claim, consumer: str) -> bool:
        args = [keys.QUEUE_GROUP, consumer, claim.entry]
        return bool(await self._call(lambda: self._renew(keys=[keys.QUEUE], args=args)))

    async def ack(self, claim: Claim) -> None:
        acked = await self._call(lambda: self._ack(
            keys=[keys.QUEUE, keys.QUEUE_ENTRIES], args=[keys.QUEUE_GROUP, claim.entry, claim.job_id, claim.attempt]))
        if not acked:  # the run that took it over acks it
            log.warning("queue: job %s: attempt %d was taken over; not acked", claim.job_id, claim.attempt)

    async def reclaim(self, consumer: str, lease: float, max_attempts: int) -> Reclaimed:
        """A job whose entry was deleted while claimed (by hand, or a trim) cannot run again:
        it is reported exhausted, with attempt max_attempts + 1, so that its job is failed."""
        runs: list[Claim] = []
        exhausted: list[Claim] = []
        cursor = "0-0"
        while True:
            args = [keys.QUEUE_GROUP, consumer, max(0, round(lease * 1000)), cursor, RECLAIM_COUNT, max_attempts]
            cursor, claims, lost = await self._call(
                lambda: self._reclaim(keys=[keys.QUEUE, keys.QUEUE_ENTRIES], args=args))
            for entry, job_id, attempt, over in claims:
                (exhausted if over else runs).append(Claim(job_id, attempt, entry))
            exhausted.extend(Claim(job_id, max_attempts + 1, entry) for entry, job_id in lost)
            if cursor == "0-0":
                return Reclaimed(tuple(runs), tuple(exhausted))

    async def remove(self, job_id: str) -> bool:
        removed = await self._call(lambda: self._remove(
            keys=[keys.QUEUE, keys.QUEUE_ENTRIES], args=[keys.QUEUE_GROUP, job_id]))
        return bool(removed)

    async def positions(self) -> dict[str, int]:
        jobs = await self._call(lambda: self._unclaimed(keys=[keys.QUEUE], args=[keys.QUEUE_GROUP]))
        return {job_id: place for place, job_id in enumerate(jobs, 1)}

    async def length(self) -> int:
        # The group's lag is the count at O(1), but Redis cannot tell it (nil) while an entry
        # deleted by `remove` lies past the group's last-delivered-id: then they are counted.
        groups = await self._call(lambda: self._redis.xinfo_groups(keys.QUEUE))
        lag = next((g.get("lag") for g in groups if g["name"] == keys.QUEUE_GROUP), None)
        return int(lag) if lag is not None else len(await self.positions())

    async def close(self) -> None:
        await self._redis.aclose()
        if self._blocking is not self._redis:
            await self._blocking.aclose()
