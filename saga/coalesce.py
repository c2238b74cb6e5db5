"""Rate limiting of one job's events that never loses the newest state."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable


class Coalescer:
    """Calls `emit` (which publishes the job's current state) at most
    `max_per_second` times per second. A push inside the window is held and
    published when the window passes, so the last update always goes out; an
    urgent push (stage boundary, terminal state) is published at once. Once closed it
    stays closed: nothing it would publish may follow the job's terminal event."""

    def __init__(self, emit: Callable[[], Awaitable[None]], max_per_second: float) -> None:
        self._emit = emit
        self._interval = 1.0 / max_per_second if max_per_second > 0 else 0.0
        self._lock = asyncio.Lock()
        self._dirty = False
        self._last = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._closed = False

    async def push(self, urgent: bool = False) -> None:
        if self._closed:
            return
        self._dirty = True
        loop = asyncio.get_running_loop()
        wait = self._last + self._interval - loop.time()
        if urgent or wait <= 0:
            await self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(wait, self._on_timer)

    async def flush(self) -> None:
        """Publish the held state now, if any."""
        async with self._lock:
            if not self._dirty or self._closed:
                return
            self._dirty = False
            self._cancel_timer()
            self._last = asyncio.get_running_loop().time()
            await self._emit()

    async def close(self) -> None:
        """Drop any held state and refuse every later push. Returns once a publish already
        under way (from a push or the timer) has finished, so the caller publishes last."""
        self._closed = True
        self._dirty = False
        self._cancel_timer()
        async with self._lock:  # waits for an emit in progress; later flushes see _closed
            pass
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    def _on_timer(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
