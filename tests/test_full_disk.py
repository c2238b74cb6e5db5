"""A store that refuses writes never leaves a job running: the data dir sits on a real
3 MB tmpfs that the test fills to the last byte while a real job solves in its child."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from app.config import Config
from app.web.keys import SERVICE
from solver.ctt import parse_ctt
from tests.app_support import ALICE, TOY_CTT, Client, config, error_of, start, submit

__all__ = ["config"]  # a fixture, used by name
WAIT = 60.0  # seconds any one expectation may take


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 3 MB tmpfs to fill needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"this machine cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write zeros until the file system says ENOSPC; the file, to delete to free it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as err:
                assert err.errno == errno.ENOSPC, err
    finally:
        os.close(fd)
    return filler


async def sse_events(resp: ClientResponse) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event name, data) of each event of an open stream, as it arrives."""
    name = "message"
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])
            name = "message"


async def read_until(stream: AsyncIterator[tuple[str, dict[str, Any]]], accept: Callable[[str, dict[str, Any]], bool]) -> list[tuple[str, dict[str, Any]]]:
    seen = []
    async with asyncio.timeout(WAIT):
        async for name, data in stream:
            seen.append((name, data))
            if accept(name, data):
                return seen
    raise AssertionError(f"the stream ended first; saw {seen}")


def running(name: str, data: dict[str, Any]) -> bool:
    return name == "progress" and data["status"] == "running"


def done(name: str, _: dict[str, Any]) -> bool:
    return name == "done"


async def until(client: TestClient, job_id: str, accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The job's snapshot once `accept` holds (looked at every 50 ms, WAIT at most)."""
    async with asyncio.timeout(WAIT):
        while True:
            snap = await (await client.get(f"/api/jobs/{job_id}", headers=ALICE)).json()
            if accept(snap):
                return snap
            await asyncio.sleep(0.05)


async def healthy(client: TestClient) -> bool:
    return (await client.get("/api/health")).status == 200


async def test_a_job_whose_result_cannot_be_saved_ends_failed_frees_its_quota_and_says_why(
    aiohttp_client: Client, config: Config, small_disk: Path
) -> None:
    config = replace(config, data_dir=small_disk / "data", max_active_jobs=1)
    client, app = await start(aiohttp_client, config)
    app[SERVICE].result_patience = 1.0
    job_id = await submit(client, time_limit="3")
    stream = sse_events(await client.get(f"/api/jobs/{job_id}/events", headers=ALICE))
    await read_until(stream, running)
    filler = fill(small_disk)

    end = await read_until(stream, done)  # before the fix: pings for ever, the job stays running
    last = [data for name, data in end if name == "progress"][-1]
    assert end[-1][1]["status"] == last["status"] == "failed"
    assert "could not be saved" in last["error"] and "full" in last["error"]
    snap = await (await client.get(f"/api/jobs/{job_id}", headers=ALICE)).json()
    assert (snap["status"], snap["latest"]["error"], snap["result"]) == ("failed", last["error"], None)
    cancel = await client.delete(f"/api/jobs/{job_id}", headers=ALICE)
    assert (cancel.status, await cancel.json()) == (200, {"status": "failed"})
    # The quota is free again (else 429), and a new job cannot be stored: 507, in JSON.
    refused = await client.post("/api/jobs", data=TOY_CTT, headers={**ALICE, "Content-Type": "text/plain"})
    assert "full" in await error_of(refused, 507)
    health = await client.get("/api/health")
    assert health.status == 503 and (await health.json())["store"] is False

    filler.unlink()  # room again: what was kept in memory is written
    async with asyncio.timeout(WAIT):
        while not await healthy(client):
            await asyncio.sleep(0.05)
    await client.close()
    client, _ = await start(aiohttp_client, config)  # a restart finds the job ended, not to run again
    again = await (await client.get(f"/api/jobs/{job_id}", headers=ALICE)).json()
    assert (again["status"], again["attempt"], again["latest"]["error"]) == ("failed", 1, last["error"])


async def test_a_result_stored_late_is_shown_meanwhile_and_the_job_completes(
    aiohttp_client: Client, config: Config, small_disk: Path
) -> None:
    config = replace(config, data_dir=small_disk / "data", max_active_jobs=1)
    client, app = await start(aiohttp_client, config)
    app[SERVICE].result_patience = WAIT
    job_id = await submit(client, time_limit="2")
    stream = sse_events(await client.get(f"/api/jobs/{job_id}/events", headers=ALICE))
    await read_until(stream, running)
    filler = fill(small_disk)

    # Finished but not stored: the snapshot and the download answer from memory meanwhile.
    snap = await until(client, job_id, lambda s: s["result"] is not None)
    assert snap["status"] == "running" and snap["result"]["hard"] == 0
    table = await client.get(f"/api/jobs/{job_id}/timetable", params={"format": "sol"}, headers=ALICE)
    assert table.status == 200 and len((await table.text()).splitlines()) == parse_ctt(TOY_CTT).total_lectures
    refused = await client.post("/api/jobs", data=TOY_CTT, headers={**ALICE, "Content-Type": "text/plain"})
    await error_of(refused, 507)  # not 429: a job that no longer runs frees its owner's quota
    assert (await client.get("/api/health")).status == 503

    filler.unlink()
    end = await read_until(stream, done)
    assert end[-1][1]["status"] == "completed"
    await client.close()
    client, _ = await start(aiohttp_client, config)
    again = await (await client.get(f"/api/jobs/{job_id}", headers=ALICE)).json()
    assert (again["status"], again["result"]) == ("completed", snap["result"])
