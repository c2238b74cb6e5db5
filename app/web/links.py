"""Where a job's resources live in the API: in snapshots, the 202 answer and `done`."""

from __future__ import annotations


def links(job_id: str) -> dict[str, str]:
    base = f"/api/jobs/{job_id}"
    return {"self": base, "events": f"{base}/events", "timetable": f"{base}/timetable"}
