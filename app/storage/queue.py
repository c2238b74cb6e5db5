"""The job queue that web instances fill and solver workers empty, as a Protocol.

Embedded (one process), the saga's `JobRunner` is the queue. With Redis, web instances
`enqueue` and any number of workers `claim`; a worker keeps its claim alive with `renew`
while it solves and `ack`s only once the job's result is stored. A claim whose worker
stopped renewing for a lease is `reclaim`ed by another worker's janitor and runs again as
the next attempt, up to a limit. Cancels travel the same way: any instance may ask, and
the worker that runs the job hears it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable, Protocol


@dataclass(frozen=True)
class Claim:
    """One run of a job by one worker."""

    job_id: str
    attempt: int  # 1 for the first run; +1 each time a claim is taken over from a stopped worker
    entry: str  # the queue's own id of the job's entry (opaque to callers)


@dataclass(frozen=True)
class Reclaimed:
    """What a janitor's pass took over from stopped workers."""

    runs: tuple[Claim, ...]  # to run again, now claimed by the janitor's worker
    exhausted: tuple[Claim, ...]  # past max_attempts: removed from the queue; the caller fails the job


class JobQueue(Protocol):
    async def enqueue(self, job_id: str) -> None:
        """Add a job at the end of the queue."""
        ...

    async def claim(self, consumer: str, block: float) -> Claim | None:
        """The oldest job no worker has, now claimed by `consumer`; None after `block`
        seconds without one."""
        ...

    async def renew(self, claim: Claim, consumer: str) -> bool:
        """Keep `consumer`'s claim alive; False when it was taken over (the caller stops)."""
        ...

    async def ack(self, claim: Claim) -> None:
        """The job is over and its result stored: forget it."""
        ...

    async def reclaim(self, consumer: str, lease: float, max_attempts: int) -> Reclaimed:
        """Take over claims not renewed for `lease` seconds (their worker stopped)."""
        ...

    async def remove(self, job_id: str) -> bool:
        """Remove a job no worker has claimed yet; False when it is claimed (or gone)."""
        ...

    async def positions(self) -> dict[str, int]:
        """Unclaimed jobs' places in line, 1 = next."""
        ...

    async def length(self) -> int:
        """Jobs waiting, unclaimed."""
        ...


class CancelSignals(Protocol):
    """Cancels asked on one instance, heard by the worker that runs the job. A listener
    that was away may have missed some: after it is back it calls `on_resubscribed`, which
    asks `requested` about the jobs it runs."""

    on_resubscribed: Callable[[], Awaitable[None]] | None

    async def request(self, job_id: str) -> None: ...

    async def requested(self, job_id: str) -> bool:
        """Whether a cancel of `job_id` was ever asked (for a worker that was away)."""
        ...

    def listen(self) -> AsyncIterator[str]:
        """Job ids whose cancel is asked from now on; survives reconnects."""
        ...
