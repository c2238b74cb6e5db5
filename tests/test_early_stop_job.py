"""A job whose optimum is 0 ends, completed, as soon as the pipeline finds cost 0: long
before its time limit, through the real JobRunner and child process."""

from __future__ import annotations

import multiprocessing
import time
from typing import Iterator

import pytest

from saga.events import COMPLETED
from saga.jobs import JobSpec
from saga.runner import JobRunner
from solver.evaluate import Cost, evaluate
from solver.generate import generate
from solver.progress import STAGES
from tests.conftest import live_children
from tests.saga_sink import CollectingSink


@pytest.fixture(scope="module", autouse=True)
def no_orphans() -> Iterator[None]:
    yield
    assert multiprocessing.active_children() == []
    assert live_children() == []


async def test_a_job_with_optimum_0_completes_long_before_its_time_limit() -> None:
    sink = CollectingSink()
    runner = JobRunner(sink, sink, slots=1)
    instance = generate(courses=8, rooms=2, curricula=3, seed=1)
    began = time.monotonic()
    try:
        await runner.submit(JobSpec("zero", instance, time_limit=60.0))
        await runner.wait("zero")
    finally:
        await runner.close()
    assert time.monotonic() - began < 10.0  # a child's start-up included
    outcome = sink.results["zero"]
    assert outcome.status == COMPLETED and outcome.cost == Cost() == evaluate(outcome.timetable)
    events = sink.events["zero"]
    order = [STAGES.index(e.stage) for e in events]
    assert order == sorted(order) and set(order) == set(range(len(STAGES)))
    assert events[-1].status == COMPLETED and events[-1].overall_progress == 100.0
