"""How every store backend keeps a result: costs as JSON objects, the timetable as two JSON
arrays (period, room per lecture), rebuilt against the job's instance text when read.

Parsing a large instance takes a while, so the newest few parsed instances are cached.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from dataclasses import fields

from app.storage.store import ResultSummary
from solver.ctt import parse_ctt
from solver.evaluate import Cost
from solver.model import Instance
from solver.timetable import UNPLACED, Timetable

INSTANCE_CACHE = 32  # parsed instances kept for get_result, by job id


def cost_json(cost: Cost | None) -> str | None:
    return None if cost is None else json.dumps({f.name: getattr(cost, f.name) for f in fields(Cost)})


def cost_of(text: str | None) -> Cost | None:
    return None if text is None else Cost(**json.loads(text))


def stage_costs_json(stage_costs: dict[str, Cost]) -> str:
    return json.dumps({stage: cost_json(c) for stage, c in stage_costs.items()})


def stage_costs_of(text: str) -> dict[str, Cost | None]:
    return {stage: cost_of(c) for stage, c in json.loads(text).items()}


def summary(status: str, period: str | None, cost: str | None) -> ResultSummary:
    """The stored result's summary, counting the unplaced lectures without the instance."""
    if period is None:
        return ResultSummary(status, cost_of(cost), None, None)
    periods = json.loads(period)
    return ResultSummary(status, cost_of(cost), len(periods), periods.count(UNPLACED))


def _timetable(cached: Instance | None, ctt: str, name: str, period: str, room: str) -> tuple[Instance, Timetable]:
    instance = cached or parse_ctt(ctt, source=name)
    return instance, Timetable.from_arrays(instance, json.loads(period), json.loads(room))


class Timetables:
    """Rebuilds stored timetables, keeping the newest INSTANCE_CACHE parsed instances
    (touched on the event loop only)."""

    def __init__(self) -> None:
        self._instances: OrderedDict[str, Instance] = OrderedDict()

    async def rebuild(self, job_id: str, ctt: str, name: str, period: str, room: str) -> Timetable:
        # Parsing (when not cached) and reading the arrays take a while on a large instance:
        # a worker thread's job, so the event loop never waits on them.
        instance, timetable = await asyncio.to_thread(_timetable, self._instances.get(job_id), ctt, name, period, room)
        self._instances[job_id] = instance
        self._instances.move_to_end(job_id)
        while len(self._instances) > INSTANCE_CACHE:
            self._instances.popitem(last=False)
        return timetable
