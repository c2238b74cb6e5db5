"""The end of a job is one transition: whatever interleaving of submits, cancels and
finishes, every job publishes exactly one terminal event, nothing after it, and the places
in line it is told only move up and are its real place whenever all is quiet.

The runner, reporters, coalescers and sinks are the real ones; only the solver child is
a scripted stand-in (saga.runner looks ChildHandle up at run time), so that hypothesis
can try hundreds of interleavings in seconds. The sink yields to the loop a random number
of times per write, as a store does, which is where the races live.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import saga.runner as runner_module
from saga.child import ChildResult, ChildTask
from saga.events import QUEUED, ProgressEvent
from saga.jobs import JobOutcome, JobSpec
from saga.process import PipeClosed
from saga.runner import JobRunner
from solver.ctt import parse_ctt
from solver.timetable import Timetable
from tests.conftest import TINY_CTT
from tests.saga_sink import CollectingSink

TINY = parse_ctt(TINY_CTT, "tiny.ctt")
EMPTY = Timetable.empty(TINY)
PAUSE = 12  # most loop turns one sink write takes
# Loop turns without a write after which nothing is under way any more: every chain of
# awaits here is a few writes long, each at most PAUSE turns (no timers are involved).
QUIET = 20 * PAUSE


class ScriptedChild:
    """Stands in for saga.process.ChildHandle: it 'solves' until told to finish, or
    until asked to stop (then it answers with its result, as the real child does)."""

    live: dict[str, ScriptedChild] = {}
    auto_finish = False

    def __init__(self, task: ChildTask, name: str) -> None:
        self.name = name
        self._messages: asyncio.Queue[object] = asyncio.Queue()
        self._ended = False
        ScriptedChild.live[name] = self

    async def start(self) -> None:
        await asyncio.sleep(0)
        if ScriptedChild.auto_finish:
            self.finish()

    async def next_messages(self) -> list[object]:
        return [await self._messages.get()]

    def finish(self) -> None:
        if not self._ended:
            self._ended = True
            self._messages.put_nowait(ChildResult(EMPTY.period, EMPTY.room, {}))

    def request_stop(self) -> None:
        self.finish()

    async def exit_description(self) -> str:
        return "The scripted child went away."

    async def kill(self, patience: float = 0.0) -> None:
        if not self._ended:
            self._ended = True
            self._messages.put_nowait(PipeClosed())
        ScriptedChild.live.pop(self.name, None)


class YieldingSink(CollectingSink):
    """Records like CollectingSink, after yielding to the loop 0-PAUSE times per write."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self._rng = rng

    async def _pause(self) -> None:
        for _ in range(self._rng.randint(0, PAUSE)):
            await asyncio.sleep(0)

    async def publish(self, event: ProgressEvent) -> None:
        await self._pause()
        await super().publish(event)

    async def save_result(self, outcome: JobOutcome) -> None:
        await self._pause()
        await super().save_result(outcome)


@dataclass(frozen=True)
class Step:
    kind: str  # submit | cancel | finish
    job: int  # for cancel and finish: which submitted job (modulo how many there are)
    pause: int  # loop turns before the next step starts


STEPS = st.lists(
    st.builds(Step, st.sampled_from(["submit", "submit", "cancel", "finish"]), st.integers(0, 7), st.integers(0, 30)),
    min_size=1, max_size=14,
)


async def _quiet(sink: YieldingSink) -> None:
    seen, still = len(sink.log), 0
    while still < QUIET:
        await asyncio.sleep(0)
        seen, still = len(sink.log), (still + 1 if len(sink.log) == seen else 0)


async def _play(steps: list[Step], seed: int) -> tuple[YieldingSink, list[str], dict[str, tuple[int | None, int]]]:
    sink = YieldingSink(random.Random(seed))
    runner = JobRunner(sink, sink, slots=1, kill_grace=30.0)
    submitted: list[str] = []

    async def act(step: Step) -> None:
        if step.kind == "submit":
            job_id = f"j{len(submitted)}"
            submitted.append(job_id)
            await runner.submit(JobSpec(job_id, TINY, time_limit=60.0))
        elif submitted and step.kind == "cancel":
            await runner.cancel(submitted[step.job % len(submitted)])
        elif submitted:
            child = ScriptedChild.live.get(f"saga-{submitted[step.job % len(submitted)]}")
            if child is not None:
                child.finish()

    try:
        tasks = []
        for step in steps:
            tasks.append(asyncio.create_task(act(step)))
            for _ in range(step.pause):
                await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        await _quiet(sink)
        # Once all is quiet, what each waiting job was told last, and its real place.
        told = {job.spec.job_id: (sink.last(job.spec.job_id).queue_position, place)
                for place, job in enumerate(runner._queue, start=1)}
        # Let everything still waiting run to its end: each job finishes as soon as it starts.
        ScriptedChild.auto_finish = True
        for child in list(ScriptedChild.live.values()):
            child.finish()
        await sink.wait_for(lambda: all(any(e.terminal for e in sink.events[j]) for j in submitted), timeout=10)
        await asyncio.wait_for(asyncio.gather(*(runner.wait(j) for j in submitted)), 5)
        await _quiet(sink)  # a stray event after an end would have come by now
    finally:
        await runner.close()
    return sink, submitted, told


def _check(sink: YieldingSink, submitted: list[str], told: dict[str, tuple[int | None, int]]) -> None:
    assert all(last == real for last, real in told.values()), f"(told, real) place in line: {told}"
    for job_id in submitted:
        events = sink.events[job_id]
        terminal = [e for e in events if e.terminal]
        assert len(terminal) == 1, (job_id, [(e.seq, e.status, e.queue_position) for e in events])
        assert events[-1].terminal, f"{job_id}: events after its end: {[(e.seq, e.status) for e in events]}"
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert sink.results[job_id].status == terminal[0].status  # the end told is the end stored
        positions = [e.queue_position for e in events if e.status == QUEUED]
        assert positions == sorted(positions, reverse=True), f"{job_id} moved back in line: {positions}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS, seed=st.integers(0, 2**32 - 1))
def test_any_interleaving_ends_each_job_exactly_once_with_correct_positions(steps: list[Step], seed: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner_module, "ChildHandle", ScriptedChild)
        ScriptedChild.live, ScriptedChild.auto_finish = {}, False
        sink, submitted, told = asyncio.run(_play(steps, seed))
    _check(sink, submitted, told)
