"""Failed-credential limits per client address: a sliding window of failure times.

An address with `limit` failures inside the last `window` seconds is refused (429)
until the oldest of them leaves the window; while refused its attempts are not even
checked, so guessing cannot go on at full speed. Memory is bounded: at most `limit`
times per address and `max_addresses` addresses (the least recently failing forgotten).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from typing import Callable

MAX_ADDRESSES = 10_000


class FailureLimiter:
    def __init__(self, limit: int = 10, window: float = 60.0, *, clock: Callable[[], float] = time.monotonic,
                 max_addresses: int = MAX_ADDRESSES) -> None:
        self.limit, self.window = limit, window
        self._clock = clock
        self._max = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.get(address)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[address]
        return times

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until `address` may try again; None when it may try now."""
        if self.limit <= 0:  # 0 turns the limit off
            return None
        now = self._clock()
        times = self._recent(address, now)
        if len(times) < self.limit:
            return None
        return max(1, math.ceil(times[0] + self.window - now))

    def failed(self, address: str) -> bool:
        """Count one failure; True when it used up the address's allowance (worth one log line)."""
        if self.limit <= 0:
            return False
        now = self._clock()
        times = self._recent(address, now)
        if address not in self._failures:
            times = self._failures[address] = deque(maxlen=self.limit)
            while len(self._failures) > self._max:
                self._failures.popitem(last=False)
        self._failures.move_to_end(address)
        times.append(now)
        return len(times) == self.limit
