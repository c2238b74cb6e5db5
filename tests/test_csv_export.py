"""CSV export: a cell a spreadsheet would run as a formula reaches it as text (issue 10, item 10)."""

from __future__ import annotations

import csv
import io

from app.config import Config
from app.web.timetable_view import FORMULA_STARTS, csv_cell
from tests.app_support import ALICE, TOY_CTT, Client, config, finished, start, submit

__all__ = ["config"]  # a fixture, used by name

# Ids are single words, so each of these is a valid .ctt instance.
FORMULAS = {"SceCosC": '=HYPERLINK("http://evil.example")', "Ocra": "@SUM(1+1)", "Cur1": "+Cur1",
            "A 32": "-A 32", "B 50": "-B 50", "C 40": "-C 40"}


async def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(aiohttp_client: Client, config: Config) -> None:
    ctt = TOY_CTT
    for old, new in FORMULAS.items():
        ctt = ctt.replace(old, new)
    client, app = await start(aiohttp_client, config)
    job_id = await submit(client, body=ctt, time_limit="1")
    assert (await finished(client, app, job_id))["status"] == "completed"
    resp = await client.get(f"/api/jobs/{job_id}/timetable", params={"format": "csv"}, headers=ALICE)
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    cells = [cell for row in rows for cell in row.values()]
    assert [c for c in cells if c.startswith(FORMULA_STARTS)] == []
    evil = [row for row in rows if row["course"] == "'" + FORMULAS["SceCosC"]]
    assert evil and all(row["teacher"] == "'@SUM(1+1)" and row["curricula"] == "'+Cur1" for row in evil)
    assert {row["room"] for row in rows} <= {"'-A", "'-B", "'-C"}
    # Ids cannot hold a tab or a CR, but a cell starting with one is escaped all the same.
    assert (csv_cell("\tx"), csv_cell("\rx"), csv_cell("x=1"), csv_cell(3)) == ("'\tx", "'\rx", "x=1", 3)
