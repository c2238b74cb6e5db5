"""Login sessions: random cookie values, kept server-side through the store, expiring.

The cookie carries 256 random bits; the store keeps only their SHA-256, so neither a
log nor a copy of the database holds a usable session. A session ends when it has been
idle too long, when it reaches its absolute lifetime, on logout, or when the token it
was opened with is no longer configured (app/security/auth.py checks the fingerprint).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, replace
from typing import Awaitable, Callable

from app.storage.store import SessionRecord, SessionStore

log = logging.getLogger(__name__)
HOUR = 3600.0
# Refreshing `seen_at` on every request would be a store write per poll of the page
# (every 3 s); once a minute is plenty for a 12 h idle limit.
TOUCH_EVERY = 60.0


@dataclass(frozen=True)
class SessionPolicy:
    idle: float = 12 * HOUR  # seconds without a request after which a session ends
    lifetime: float = 7 * 24 * HOUR  # seconds after login after which it ends, used or not

    @property
    def touch_every(self) -> float:
        # A tenth of the idle limit for short (test) limits, so use keeps a session alive.
        return min(TOUCH_EVERY, self.idle / 10)

    def expired(self, session: SessionRecord, now: float) -> bool:
        return now - session.seen_at >= self.idle or now - session.created_at >= self.lifetime


def session_key(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8", "surrogatepass")).hexdigest()  # any str, never a 500


class Sessions:
    def __init__(self, store: SessionStore, policy: SessionPolicy, clock: Callable[[], float] = time.time) -> None:
        # Wall-clock time: sessions outlive the process, so a monotonic clock would not do.
        self._store, self.policy, self._clock = store, policy, clock
        self._housekeeping_failing = False

    async def open(self, user: str, token_fp: str) -> str:
        """A new session for `user`; the cookie value to hand out (shown nowhere else)."""
        now = self._clock()
        cookie = secrets.token_urlsafe(32)
        await self._store.put_session(SessionRecord(session_key(cookie), user, token_fp, now, now))
        return cookie

    async def find(self, cookie: str) -> SessionRecord | None:
        """The live session of `cookie`, its idle clock restarted; None when unknown or expired."""
        key = session_key(cookie)
        session = await self._store.get_session(key)
        if session is None:
            return None
        now = self._clock()
        if self.policy.expired(session, now):
            await self._housekeeping(self._store.delete_session(key))  # prune deletes it later otherwise
            return None
        if now - session.seen_at >= self.policy.touch_every:
            await self._housekeeping(self._store.touch_session(key, now))
            session = replace(session, seen_at=now)
        return session

    async def _housekeeping(self, write: Awaitable[None]) -> None:
        """A write that only keeps the books: when the store refuses it (a full disk), the
        request still gets its answer, rather than a 507 for reading a job list."""
        try:
            await write
        except Exception as err:  # each store backend has its own errors
            if not self._housekeeping_failing:  # one line per spell of failures, not per request
                log.warning("sessions: could not write to the store (%s); answering anyway", err)
            self._housekeeping_failing = True
        else:
            self._housekeeping_failing = False

    async def close(self, cookie: str) -> None:
        await self._store.delete_session(session_key(cookie))

    async def prune(self, token_fps: frozenset[str]) -> int:
        """Forget expired sessions and those whose token is gone (at start-up and at each login)."""
        now = self._clock()
        return await self._store.prune_sessions(now - self.policy.idle, now - self.policy.lifetime, token_fps)
