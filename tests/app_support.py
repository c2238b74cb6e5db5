"""Instances and helpers shared by the app's tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from app.config import Config
from app.web.application import create_app
from app.web.keys import RUNNER

# The toy instance of the ITC-2007 track 3 description: small enough to solve in a second.
TOY_CTT = """Name: Toy
Courses: 4
Rooms: 3
Days: 5
Periods_per_day: 4
Curricula: 2
Constraints: 8

COURSES:
SceCosC Ocra 3 3 30
ArcTec Indaco 3 2 42
TecCos Rosa 5 4 40
Geotec Scarlatti 5 4 18

ROOMS:
A 32
B 50
C 40

CURRICULA:
Cur1 3 SceCosC ArcTec TecCos
Cur2 2 TecCos Geotec

UNAVAILABILITY_CONSTRAINTS:
TecCos 2 0
TecCos 2 1
TecCos 3 2
TecCos 3 3
ArcTec 4 0
ArcTec 4 1
ArcTec 4 2
ArcTec 4 3

END.
"""

# Infeasible only by combination, so the pre-solve check (solver/check.py) accepts it:
# each pair of the three courses shares a curriculum, so all 6 lectures need distinct
# periods, but there are 5; yet each curriculum needs only 4 and 2 rooms give 10 slots.
# Every run ends infeasible (the pipeline leaves at least one lecture unplaced).
INCOMPLETE_CTT = """Name: Triangle
Courses: 3
Rooms: 2
Days: 1
Periods_per_day: 5
Curricula: 3
Constraints: 0

COURSES:
A ta 2 1 10
B tb 2 1 10
C tc 2 1 10

ROOMS:
r1 20
r2 20

CURRICULA:
qAB 2 A B
qBC 2 B C
qAC 2 A C

UNAVAILABILITY_CONSTRAINTS:

END.
"""

# The toy instance whose optimum is not 0 (a course larger than every room), so a job of it
# runs its whole time limit: the toy itself reaches cost 0 in a tenth of a second, and a job
# at cost 0 ends at once. For tests that need a job running or waiting behind one.
BUSY_CTT = TOY_CTT.replace("SceCosC Ocra 3 3 30", "SceCosC Ocra 3 3 90")
# The toy instance with a fourth room of capacity 0: accepted, but the pre-solve check warns.
ZERO_ROOM_CTT = TOY_CTT.replace("Rooms: 3", "Rooms: 4").replace("C 40\n", "C 40\nD 0\n")
ZERO_ROOM_WARNING = "Room D has capacity 0: every lecture placed there costs its students."

# Tokens of 16+ characters: the service refuses shorter ones at start-up.
ALICE_TOKEN, BOB_TOKEN, ROOT_TOKEN = "tok-alice-0123456789", "tok-bob-0123456789ab", "tok-root-0123456789a"
ALICE, BOB, ROOT = ({"Authorization": f"Bearer {t}"} for t in (ALICE_TOKEN, BOB_TOKEN, ROOT_TOKEN))
Client = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{ALICE_TOKEN} alice\n{BOB_TOKEN} bob\n{ROOT_TOKEN} root admin\n")
    return Config(data_dir=tmp_path / "data", tokens=tokens, slots=1, max_body=64 * 1024, time_limit=2)


async def start(aiohttp_client: Client, config: Config) -> tuple[TestClient, web.Application]:
    app = create_app(config)
    return await aiohttp_client(app), app


async def submit(client: TestClient, body: str = TOY_CTT, headers: dict[str, str] = ALICE, **query: Any) -> str:
    resp = await client.post("/api/jobs", data=body, params={"time_limit": "2", **query},
                             headers={**headers, "Content-Type": "text/plain"})
    assert resp.status == 202, await resp.text()
    return (await resp.json())["id"]


async def finished(client: TestClient, app: web.Application, job_id: str) -> dict[str, Any]:
    await app[RUNNER].wait(job_id)
    resp = await client.get(f"/api/jobs/{job_id}", headers=ROOT)
    assert resp.status == 200
    return await resp.json()


async def error_of(resp: Any, status: int) -> str:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body) == {"error", "detail"}
    return body["detail"]
