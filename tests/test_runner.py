"""JobRunner with real child processes running real (small) solves."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import signal
import time
from dataclasses import replace
from typing import AsyncIterator, Iterator

import pytest

from saga.child import ChildProgress
from saga.events import CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING
from saga.jobs import CancelResult, Feasibility, JobOutcome, JobSpec
from saga.reporter import JobReporter, shortfall
from saga.runner import JobRunner
from saga.weights import DEFAULT_WEIGHTS
from solver.check import ERROR, check
from solver.ctt import parse_ctt
from solver.evaluate import evaluate
from solver.generate import generate
from solver.model import Curriculum, Instance
from solver.progress import CPSAT, GA, REFINEMENT, STAGES
from solver.timetable import UNPLACED, Timetable
from tests.app_support import INCOMPLETE_CTT
from tests.conftest import live_children
from tests.saga_sink import CollectingSink


@pytest.fixture(scope="module", autouse=True)
def no_orphans() -> Iterator[None]:
    yield
    assert multiprocessing.active_children() == []
    assert live_children() == []


@pytest.fixture(scope="module")
def instance() -> Instance:
    return generate(courses=12, rooms=3, curricula=4, seed=1)


@pytest.fixture
def sink() -> CollectingSink:
    return CollectingSink()


@pytest.fixture
async def runner(sink: CollectingSink) -> AsyncIterator[JobRunner]:
    runner = JobRunner(sink, sink, slots=2)
    yield runner
    await runner.close()


def _assert_complete_and_evaluated(outcome, instance: Instance) -> None:
    assert outcome.timetable is not None and outcome.cost is not None
    assert len(outcome.timetable.period) == instance.index.n_lectures
    assert outcome.cost == evaluate(outcome.timetable)
    assert outcome.cost.lectures == len(outcome.timetable.unplaced)


async def test_completed_job_reports_every_stage_in_order_up_to_exactly_100(runner, sink, instance) -> None:
    await runner.submit(JobSpec("a", instance, time_limit=3.0, first_seq=5))
    await runner.wait("a")
    events = sink.events["a"]
    assert [e.seq for e in events] == list(range(5, 5 + len(events)))
    order = [STAGES.index(e.stage) for e in events]
    assert order == sorted(order) and set(order) == set(range(len(STAGES)))
    overall = [e.overall_progress for e in events]
    assert overall == sorted(overall) and overall[0] < 5 and overall[-1] == 100.0
    assert events[-1].status == COMPLETED and events[-1].eta_seconds == 0
    steady = [e for e in events if e.stage in (GA, REFINEMENT) and e.status == RUNNING]
    assert steady and all(e.eta_seconds is not None and e.eta_seconds >= 0 for e in steady)
    assert all(e.stage not in e.message and "_" not in e.message for e in events)
    assert len({e.started_at for e in events}) == 1 and all(e.started_at <= e.updated_at for e in events)
    assert [e.updated_at for e in events] == sorted(e.updated_at for e in events)
    cpsat = [e for e in events if e.stage == CPSAT and e.status == RUNNING and e.items is not None]
    assert cpsat and all(0 <= e.items.done <= e.items.total == cpsat[0].items.total for e in cpsat)
    assert events[-1].best is not None and events[-1].best.hard == 0
    assert (events[-1].best.hard, events[-1].best.soft) == (sink.results["a"].cost.hard, sink.results["a"].cost.soft)
    known = [e.best for e in events if e.best is not None]
    assert [(b.hard, b.soft) for b in known] == sorted(((b.hard, b.soft) for b in known), reverse=True)
    assert [kind for kind, *_ in sink.log][-2:] == ["result", "event"]  # result saved before the end is told
    outcome = sink.results["a"]
    assert outcome.status == COMPLETED
    _assert_complete_and_evaluated(outcome, instance)
    assert (events[-1].feasible, events[-1].unplaced, events[-1].hard_violations) == (True, 0, 0)
    assert events[-1].message == "Timetable ready"
    assert all(e.feasible is None for e in events[:-1])  # the verdict belongs to the end only
    assert outcome.cost.key <= evaluate(outcome.timetable.empty(instance)).key


async def test_progress_events_are_rate_limited_but_boundaries_are_not(runner, sink, instance) -> None:
    await runner.submit(JobSpec("r", instance, time_limit=2.0))
    await runner.wait("r")
    events = sink.events["r"]
    held = [(a, b) for a, b in zip(events, events[1:]) if a.stage == b.stage and b.status == RUNNING and b.stage_progress < 100]
    assert held and all(b.updated_at - a.updated_at >= 0.045 for a, b in held)
    boundaries = [(a, b) for a, b in zip(events, events[1:]) if a.stage != b.stage]
    assert [b.stage for _, b in boundaries] == list(STAGES[1:])
    # The event before each new stage is the old stage complete, at its exact end percent.
    assert all(a.stage_progress == 100.0 and a.overall_progress == DEFAULT_WEIGHTS.span(a.stage).end for a, _ in boundaries)


@pytest.mark.parametrize("stage", [CPSAT, GA, REFINEMENT])
async def test_cancel_in_each_stage_stops_fast_and_keeps_a_complete_timetable(runner, sink, instance, stage) -> None:
    # A long budget: every stage lasts long enough for the cancel to land in it.
    await runner.submit(JobSpec("c", instance, time_limit=30.0))
    await sink.wait_for_event("c", lambda e: e.stage == stage)
    asked = time.monotonic()
    assert await runner.cancel("c") == CancelResult.STOPPING
    await sink.wait_for_event("c", lambda e: e.terminal, timeout=10)
    ended = next(t for kind, job, t in reversed(sink.log) if kind == "event" and job == "c")
    assert ended - asked <= 2.0  # generous for a loaded CI machine; bench/saga_bench.py measures it
    assert [e.stage for e in sink.events["c"] if not e.terminal][-1] == stage
    assert sink.last("c").status == CANCELLED and sink.last("c").eta_seconds == 0
    outcome = sink.results["c"]
    assert outcome.status == CANCELLED
    _assert_complete_and_evaluated(outcome, instance)
    await runner.wait("c")
    assert await runner.cancel("c") == CancelResult.UNKNOWN


async def test_killed_child_fails_with_a_readable_error(runner, sink, instance) -> None:
    await runner.submit(JobSpec("k", instance, time_limit=4.0))
    await sink.wait_for_event("k", lambda e: e.stage == CPSAT)
    (child,) = [p for p in multiprocessing.active_children() if p.name == "saga-k"]
    os.kill(child.pid, signal.SIGKILL)
    await asyncio.wait_for(runner.wait("k"), 10)
    last = sink.last("k")
    assert last.status == FAILED and "SIGKILL" in (last.error or "")
    assert sink.results["k"].status == FAILED and sink.results["k"].error == last.error


async def test_queue_positions_move_up_as_slots_free(sink, instance) -> None:
    runner = JobRunner(sink, sink, slots=1)
    try:
        for job in "xyz":
            await runner.submit(JobSpec(job, instance, time_limit=1.0))
        assert runner.busy_slots == 1 and runner.slots == 1
        for job in "xyz":
            await runner.wait(job)
    finally:
        await runner.close()
    positions = {job: [e.queue_position for e in sink.events[job] if e.status == QUEUED] for job in "xyz"}
    assert positions == {"x": [], "y": [1], "z": [2, 1]}
    assert all(sink.last(job).status == COMPLETED for job in "xyz")
    starts = {job: sink.events[job][0 if job == "x" else len(positions[job])].updated_at for job in "xyz"}
    assert starts["x"] < starts["y"] < starts["z"]


async def test_cancelling_a_queued_job_removes_it(sink, instance) -> None:
    runner = JobRunner(sink, sink, slots=1)
    try:
        await runner.submit(JobSpec("first", instance, time_limit=2.0))
        await runner.submit(JobSpec("second", instance, time_limit=2.0))
        await runner.submit(JobSpec("third", instance, time_limit=1.0))
        assert await runner.cancel("second") == CancelResult.REMOVED
        assert sink.last("second").status == CANCELLED and sink.last("second").stage is None
        assert (sink.last("second").feasible, sink.last("second").unplaced) == (False, instance.index.n_lectures)
        assert sink.results["second"].cost == evaluate(sink.results["second"].timetable)
        assert sink.last("third").queue_position == 1
        assert await runner.cancel("second") == CancelResult.UNKNOWN
        await runner.wait("third")
        assert sink.last("third").status == COMPLETED
    finally:
        await runner.close()


async def test_close_kills_running_children(sink, instance) -> None:
    runner = JobRunner(sink, sink, slots=2)
    await runner.submit(JobSpec("p", instance, time_limit=30.0))
    await runner.submit(JobSpec("q", instance, time_limit=30.0))
    await sink.wait_for_event("q", lambda e: e.stage == CPSAT)
    await runner.close()
    assert multiprocessing.active_children() == []
    assert not any(e.terminal for e in sink.events["p"] + sink.events["q"])
    with pytest.raises(RuntimeError):
        await runner.submit(JobSpec("late", instance, time_limit=1.0))


async def test_a_child_that_does_not_stop_is_killed_after_the_grace_and_ends_cancelled(sink, instance) -> None:
    runner = JobRunner(sink, sink, slots=1, kill_grace=0.5)
    try:
        await runner.submit(JobSpec("s", instance, time_limit=30.0))
        await sink.wait_for_event("s", lambda e: e.stage == GA)  # a complete best timetable exists
        (child,) = [p for p in multiprocessing.active_children() if p.name == "saga-s"]
        os.kill(child.pid, signal.SIGSTOP)  # frozen: it cannot answer the stop request
        asked = time.monotonic()
        assert await runner.cancel("s") == CancelResult.STOPPING
        await asyncio.wait_for(runner.wait("s"), 10)
        assert time.monotonic() - asked >= 0.5
        assert not child.is_alive()
    finally:
        await runner.close()
    assert sink.last("s").status == CANCELLED
    _assert_complete_and_evaluated(sink.results["s"], instance)


async def test_an_exception_in_the_solver_fails_the_job_with_a_readable_error(runner, sink, instance) -> None:
    # The readers refuse this; built by hand, it breaks the solver's indexing in the child.
    broken = replace(instance, curricula=(*instance.curricula, Curriculum("q-bad", ("no-such-course",))))
    await runner.submit(JobSpec("e", broken, time_limit=3.0))
    await asyncio.wait_for(runner.wait("e"), 20)
    last = sink.last("e")
    assert last.status == FAILED and "no-such-course" in (last.error or "")
    assert "Traceback" not in last.error and sink.results["e"].status == FAILED


async def test_a_run_that_cannot_place_every_lecture_says_so_in_its_final_event(runner, sink) -> None:
    triangle = parse_ctt(INCOMPLETE_CTT)
    assert [f for f in check(triangle) if f.level == ERROR] == []  # accepted before solving
    await runner.submit(JobSpec("i", triangle, time_limit=1.0))
    await runner.wait("i")
    outcome, last = sink.results["i"], sink.last("i")
    unplaced = len(outcome.timetable.unplaced)
    assert outcome.status == last.status == COMPLETED and unplaced >= 1
    assert outcome.feasibility == Feasibility(unplaced, 6, outcome.cost.hard)
    assert (last.feasible, last.unplaced, last.hard_violations) == (False, unplaced, outcome.cost.hard)
    assert last.message.startswith(f"Finished without a complete timetable: {unplaced} of 6 lectures unplaced")


async def test_a_cancelled_run_with_an_incomplete_timetable_says_so(sink) -> None:
    triangle = parse_ctt(INCOMPLETE_CTT)
    reporter = JobReporter(JobSpec("h", triangle, time_limit=1.0), sink, DEFAULT_WEIGHTS, max_per_second=20)
    await reporter.running()
    partial = Timetable.from_arrays(triangle, [0, 1, 2, 3, 4, UNPLACED], [0, 0, 0, 0, 0, UNPLACED])
    await reporter.finish(JobOutcome("h", CANCELLED, partial, evaluate(partial)))
    last = sink.last("h")
    assert (last.feasible, last.unplaced, last.hard_violations) == (False, 1, 1)
    assert last.message == ("Stopped on request; the best timetable found so far is kept but is incomplete: "
                            "1 of 6 lectures unplaced")


def test_shortfall_counts_unplaced_lectures_and_other_hard_violations() -> None:
    assert shortfall(Feasibility(41, 1705, 44)) == "41 of 1,705 lectures unplaced, 3 other hard violations"
    assert shortfall(Feasibility(1, 6, 1)) == "1 of 6 lectures unplaced"
    assert shortfall(Feasibility(0, 6, 1)) == "1 hard violation"
    assert Feasibility(0, 6, 0).feasible and not Feasibility(0, 6, 1).feasible


def _refuse_to_unpickle(self: object, state: object) -> None:
    raise pickle.UnpicklingError("a message that does not read")


async def test_a_reader_thread_that_cannot_read_a_message_ends_the_job_failed(runner, sink, instance, monkeypatch) -> None:
    # Only this (parent) process is patched: the spawned child pickles its progress as ever,
    # and the parent's reader thread fails on the first one, with neither EOF nor OSError.
    monkeypatch.setattr(ChildProgress, "__setstate__", _refuse_to_unpickle, raising=False)
    await runner.submit(JobSpec("u", instance, time_limit=30.0))
    await asyncio.wait_for(runner.wait("u"), 20)  # before the fix: waits for ever
    last = sink.last("u")
    assert last.status == FAILED and sink.results["u"].status == FAILED
    assert last.error == "Lost contact with the solver: UnpicklingError: a message that does not read"
    assert [p for p in multiprocessing.active_children() if p.name == "saga-u"] == []
