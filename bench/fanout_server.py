"""The web process `bench/fanout.py` measures: the real app, served as `timetabler serve`
serves it, with one thing swapped and one route added.

- Jobs are not solved here: a job's producer replays a real job's recorded events at
  their original pace, through the same path as a solve's events (`JobService.publish`:
  the hub, then the store), so this small machine's cores stay with the web process and
  the client. Replays begin on `POST /api/bench/start`, once every subscriber is connected.
- `GET /api/bench/poll/{id}` is the baseline, the seeds' design (seeds 000 and 004): an SSE
  endpoint that reads the job's state every 500 ms and writes it when it changed.

    python -m bench.fanout_server --recording events.json --port 8081 --tokens tokens.txt ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from app import config as settings
from app.security.auth import visible_job
from app.service import JobService
from app.web import serving, sse
from app.web.application import create_app
from app.web.keys import SERVICE, STORE
from saga.events import ProgressEvent
from saga.jobs import CancelResult, JobSpec

POLL_INTERVAL = 0.5  # seconds, as in the seeds


class ReplayRunner:
    """Runs a job by publishing a recorded job's events again, at their recorded pace."""

    def __init__(self, service: JobService, recording: list[ProgressEvent]) -> None:
        self._service = service
        self._recording = recording
        self._waiting: list[JobSpec] = []
        self._replays: set[asyncio.Task[None]] = set()

    async def submit(self, spec: JobSpec) -> None:
        await self._service.publish(self._event(spec, 0))  # the recording's first event: queued
        self._waiting.append(spec)

    async def cancel(self, job_id: str) -> CancelResult:
        return CancelResult.UNKNOWN  # the bench never cancels

    def start(self) -> int:
        """Begin every submitted job's replay at once; how many began."""
        started, self._waiting = self._waiting, []
        for spec in started:
            task = asyncio.get_running_loop().create_task(self._replay(spec))
            self._replays.add(task)
            task.add_done_callback(self._replays.discard)
        return len(started)

    async def _replay(self, spec: JobSpec) -> None:
        for index in range(1, len(self._recording)):
            await asyncio.sleep(self._recording[index].updated_at - self._recording[index - 1].updated_at)
            await self._service.publish(self._event(spec, index))

    def _event(self, spec: JobSpec, index: int) -> ProgressEvent:
        recorded = self._recording[index]
        return replace(recorded, job_id=spec.job_id, seq=spec.first_seq + index, updated_at=time.time())


async def start(request: web.Request) -> web.Response:
    runner = request.app[SERVICE].runner
    assert isinstance(runner, ReplayRunner)
    return web.json_response({"started": runner.start()})


async def poll(request: web.Request) -> web.StreamResponse:
    """The baseline: each subscriber polls the job's state and writes what changed."""
    job = await visible_job(request, request.match_info["id"])
    store = request.app[STORE]
    response = web.StreamResponse(headers=sse.STREAM_HEADERS)
    await response.prepare(request)
    await response.write(sse.event(sse.json_text({"job_id": job.id}), name="connected"))
    sent = 0
    while True:
        latest = await store.latest_event(job.id)
        if latest is not None and latest.seq != sent:
            sent = latest.seq
            await response.write(sse.event(json.dumps(latest.to_dict()), name="progress", id=str(latest.seq)))
            if latest.terminal:
                await response.write(sse.event(json.dumps({"status": latest.status}), name="done"))
                return response
        await asyncio.sleep(POLL_INTERVAL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recording", type=Path, required=True, help="JSON list of a real job's events")
    settings.add_arguments(parser)
    args = parser.parse_args()
    recording = [ProgressEvent.from_dict(e) for e in json.loads(args.recording.read_text())]
    del args.recording
    config = settings.load(args)
    app = create_app(config)
    app[SERVICE].runner = ReplayRunner(app[SERVICE], recording)
    app.router.add_post("/api/bench/start", start)
    app.router.add_get("/api/bench/poll/{id}", poll)
    serving.run(app, config)


if __name__ == "__main__":
    main()
