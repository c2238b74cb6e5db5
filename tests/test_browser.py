"""The page, driven in headless Chromium against the real service in a subprocess."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
import pytest

from app.security.auth import COOKIE
from solver.evaluate import HARD, SOFT
from tests.app_support import INCOMPLETE_CTT
from tests.browser_support import (  # noqa: F401 (fixtures)
    TOKEN,
    Service,
    browser,
    own_service,
    page_at,
    record,
    screenshot,
    service,
    wait_until,
)

pytestmark = pytest.mark.browser

SAMPLE = "small"


def sample_lectures(service: Service, name: str) -> int:
    samples = service.api("GET", "/api/samples").json()["samples"]
    return next(s["lectures"] for s in samples if s["name"] == name)


def submit_sample(page: object, name: str, seconds: int) -> str:
    page.locator("#sample").select_option(name)
    page.locator("#time-limit").fill(str(seconds))
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"#/jobs/.+"))
    record(page, "bar", "#overall", "aria-valuenow")
    record(page, "caption", "#overall-value")
    record(page, "connection", "#connection", "data-state")
    record(page, "announced", "#announcer")
    return page.url.rsplit("/", 1)[1]


def wait_for_status(page: object, status: str, timeout: float) -> None:
    page.wait_for_function(
        "s => document.querySelector('#job-status').dataset.status === s", arg=status, timeout=timeout * 1000
    )


def wait_for_focus(page: object, selector: str) -> None:
    page.wait_for_function("sel => document.activeElement === document.querySelector(sel)", arg=selector, timeout=5000)


def wait_for_full_bar(page: object) -> None:
    page.wait_for_function("() => document.querySelector('#overall').getAttribute('aria-valuenow') === '100'")


def lecture_count(page: object) -> int:
    return page.locator("#grid .lecture").count()


def assert_grid_matches_api(page: object, service: Service, job_id: str, total: int) -> None:
    """Every placed lecture is a grid cell entry; the unplaced ones are listed below it."""
    data = service.api("GET", f"/api/jobs/{job_id}/timetable?format=json").json()
    assert len(data["lectures"]) + len(data["unplaced"]) == total
    assert lecture_count(page) == len(data["lectures"]) > 0
    listed = page.locator("#unplaced li").all_inner_texts()
    assert sum(int(t.split(" × ")[1]) if " × " in t else 1 for t in listed) == len(data["unplaced"])


def test_a_job_runs_to_a_full_grid_with_a_monotonic_bar(service: Service, page_at: object) -> None:
    page = page_at(service)
    job_id = submit_sample(page, SAMPLE, 6)

    page.wait_for_function("() => Number(document.querySelector('#overall').getAttribute('aria-valuenow')) >= 20")
    screenshot(page, "job-running.png")
    wait_for_status(page, "completed", 40)
    page.locator("#result").wait_for(state="visible")
    wait_for_full_bar(page)

    bar = [int(v) for v in page.evaluate("window.bar")]
    captions = [int(c.split()[0]) for c in page.evaluate("window.caption")]
    for values in (bar, captions):
        assert values == sorted(values), f"the bar went backwards: {values}"
        assert values[-1] == 100
    assert len(set(bar)) > 10, "the bar should move in many small steps, not jump"
    assert page.locator("#pipeline li.done").count() == 5

    total = sample_lectures(service, SAMPLE)
    assert lecture_count(page) == total
    # The sample has courses larger than its largest room: the check's warnings stand under the title.
    warnings = service.api("GET", f"/api/jobs/{job_id}").json()["warnings"]
    assert warnings and page.locator("#check-warnings li").all_inner_texts() == warnings
    assert page.locator("#verdict").is_hidden()  # a complete timetable needs no warning
    api_timetable = service.api("GET", f"/api/jobs/{job_id}/timetable?format=json").json()
    assert len(api_timetable["lectures"]) == total
    shown_costs = page.locator("#breakdown tbody td:nth-child(3)").all_inner_texts()
    assert shown_costs == [str(api_timetable["cost"][name]) for name in HARD + SOFT]
    screenshot(page, "result-grid.png")

    # Progress was announced politely to screen readers, in words, ending with the outcome.
    assert page.locator("#announcer").get_attribute("aria-live") == "polite"
    announced = page.evaluate("window.announced")
    assert any("percent done" in a for a in announced) and announced[-1] == "Job completed"

    # Each filter shows exactly the lectures of the curriculum, teacher or room chosen.
    for name, matches in (
        ("curriculum", lambda lecture, v: v in lecture["curricula"]),
        ("teacher", lambda lecture, v: lecture["teacher"] == v),
        ("room", lambda lecture, v: lecture["room"] == v),
    ):
        value = page.locator(f"#filter-{name} option").nth(1).get_attribute("value")
        page.locator(f"#filter-{name}").select_option(value)
        expected = sum(matches(lecture, value) for lecture in api_timetable["lectures"])
        assert 0 < lecture_count(page) == expected < total, name
        page.locator(f"#filter-{name}").select_option("")
    for fmt in ("sol", "csv", "json"):
        assert page.locator(f"#dl-{fmt}").get_attribute("href").endswith(f"format={fmt}")


def test_cancel_mid_run_keeps_the_best_timetable_at_phone_width(service: Service, page_at: object) -> None:
    page = page_at(service, width=390)
    job_id = submit_sample(page, "medium", 30)
    # Once the Building step is done every lecture has a place, so the best-so-far is complete.
    page.locator("#pipeline li.done[data-stage=cpsat_solving]").wait_for(timeout=30_000)
    screenshot(page, "job-running-390.png")

    page.get_by_role("button", name="Cancel job").click()
    dialog = page.locator("#cancel-dialog")
    assert dialog.is_visible()
    page.keyboard.press("Escape")  # keyboard: Escape keeps the job running
    assert not dialog.is_visible()
    assert page.locator("#job-status").get_attribute("data-status") == "running"
    page.get_by_role("button", name="Cancel job").focus()
    page.keyboard.press("Enter")
    # Each key goes where the focus is: wait for the dialog's autofocus before moving on.
    wait_for_focus(page, "#cancel-dialog button[value=keep]")
    page.keyboard.press("Tab")  # from "Keep running" (autofocused) to "Cancel job"
    wait_for_focus(page, "#cancel-dialog button[value=cancel]")
    page.keyboard.press("Enter")

    wait_for_status(page, "cancelled", 30)
    page.locator("#result").wait_for(state="visible")
    assert "cancelling" in page.locator("#result-summary").inner_text()
    assert_grid_matches_api(page, service, job_id, sample_lectures(service, "medium"))
    wrap_overflows = page.evaluate("() => { const w = document.querySelector('.grid-wrap'); return w.scrollWidth > w.clientWidth; }")
    page_overflows = page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth")
    assert wrap_overflows and not page_overflows, "at 390 px only the grid should scroll sideways"
    screenshot(page, "result-grid-390.png")


def test_a_server_restart_mid_run_recovers_without_reloading(own_service: Service, page_at: object) -> None:
    page = page_at(own_service)
    job_id = submit_sample(page, "medium", 10)
    page.wait_for_function("() => document.querySelector('#connection').dataset.state === 'live'")
    page.wait_for_function("() => Number(document.querySelector('#overall').getAttribute('aria-valuenow')) >= 5")
    page.evaluate("window.marker = 1")  # gone if the page reloads

    own_service.stop(signal.SIGKILL)  # a crash: the job is left running in the store
    page.wait_for_function("() => ['reconnecting', 'polling'].includes(document.querySelector('#connection').dataset.state)")
    own_service.start()
    wait_for_status(page, "completed", 60)

    states = page.evaluate("window.connection")
    first_outage = next(i for i, s in enumerate(states) if s in ("reconnecting", "polling"))
    assert "live" in states[first_outage:], f"never live again after the restart: {states}"
    assert page.evaluate("window.marker") == 1
    assert int(page.locator("#attempt").inner_text()) >= 2
    assert own_service.api("GET", f"/api/jobs/{job_id}").json()["attempt"] >= 2
    wait_for_full_bar(page)
    bar = [int(v) for v in page.evaluate("window.bar")]
    assert bar == sorted(bar), f"the bar went backwards across the restart: {bar}"
    page.locator("#result").wait_for(state="visible")
    assert_grid_matches_api(page, own_service, job_id, sample_lectures(own_service, "medium"))


def upload(page: object, name: str, text: str, seconds: int) -> str:
    page.get_by_label("Upload a .ctt file").check()
    page.locator("#instance-file").set_input_files(files=[{"name": name, "mimeType": "text/plain", "buffer": text.encode()}])
    page.locator("#time-limit").fill(str(seconds))
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"#/jobs/.+"))
    return page.url.rsplit("/", 1)[1]


def test_an_incomplete_timetable_is_shown_as_such_live_and_when_reopened(service: Service, page_at: object) -> None:
    page = page_at(service)
    page.locator("#jobs-view").wait_for(state="visible")
    # A third room of capacity 0: still infeasible by combination, and the check warns before solving.
    with_empty_room = INCOMPLETE_CTT.replace("Rooms: 2", "Rooms: 3").replace("r2 20\n", "r2 20\nr3 0\n")
    job_id = upload(page, "triangle.ctt", with_empty_room, 1)
    notes = page.locator("#check-warnings")
    notes.wait_for(state="visible")
    empty_room = "Room r3 has capacity 0: every lecture placed there costs its students."
    assert notes.inner_text().startswith("Before solving") and notes.locator("li").all_inner_texts() == [empty_room]
    wait_for_status(page, "completed", 30)
    banner = page.locator("#verdict")
    banner.wait_for(state="visible")
    unplaced = service.api("GET", f"/api/jobs/{job_id}").json()["unplaced"]
    lectures = "lecture" if unplaced == 1 else "lectures"
    expected = f"This timetable is incomplete: {unplaced} {lectures} could not be placed"
    assert unplaced >= 1 and banner.inner_text().startswith(expected)
    assert banner.get_attribute("role") == "alert"
    assert page.locator("#connection").get_attribute("data-state") == "closed", "the end came over the stream"
    page.locator("#result").wait_for(state="visible")
    screenshot(page, "result-incomplete.png")

    page.goto(f"{service.url}/#/")  # the jobs list marks it, and opening it again shows the warning again
    row = page.locator(f"tr[data-job='{job_id}']")
    row.locator(".tag-incomplete").wait_for(state="visible")
    row.get_by_role("link").click()
    page.locator("#result").wait_for(state="visible")
    assert banner.is_visible() and banner.inner_text().startswith(expected)
    assert notes.is_visible() and notes.locator("li").all_inner_texts() == [empty_room]


def test_a_wrong_token_and_a_bad_upload_get_clear_messages(service: Service, page_at: object) -> None:
    page = page_at(service, token="not-the-token")
    message = page.locator("#login-error")
    message.wait_for(state="visible")
    assert "not accepted" in message.inner_text()
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "at " + "http" not in body

    page.locator("#token").fill(TOKEN)
    page.keyboard.press("Enter")
    page.locator("#jobs-view").wait_for(state="visible")

    bad = b"Name: broken\nCourses: 1\nRooms: 1\nDays: 5\nPeriods_per_day: 4\nCurricula: 0\nConstraints: 0\n\nCOURSES:\nc1 t1 two 1 10\n"
    expected = service.api("POST", "/api/jobs", files={"instance": ("broken.ctt", bad)}).json()["detail"]
    page.get_by_label("Upload a .ctt file").check()
    page.locator("#instance-file").set_input_files(files=[{"name": "broken.ctt", "mimeType": "text/plain", "buffer": bad}])
    page.get_by_role("button", name="Start").click()
    upload_error = page.locator("#upload-error")
    upload_error.wait_for(state="visible")
    assert upload_error.inner_text() == expected
    assert "line" in expected


def snapshot_fetches(page: object, job_id: str) -> list[float]:
    """When (ms, page clock) the page fetched the job's snapshot, from Resource Timing."""
    return page.evaluate(
        "id => performance.getEntriesByType('resource').filter(e => new URL(e.name).pathname === `/api/jobs/${id}`)"
        ".map(e => e.startTime)",
        job_id,
    )


def test_a_broken_stream_falls_back_to_polling_every_5_s_and_returns_to_live(service: Service, page_at: object) -> None:
    page = page_at(service)
    page.route("**/events*", lambda route: route.abort())  # as behind a proxy that breaks streaming
    job_id = submit_sample(page, "medium", 60)

    page.wait_for_function("() => document.querySelector('#connection').dataset.state === 'polling'", timeout=30_000)
    polling_since = page.evaluate("performance.now()") - 100
    page.wait_for_function(
        "([id, since]) => performance.getEntriesByType('resource')"
        ".filter(e => new URL(e.name).pathname === `/api/jobs/${id}` && e.startTime >= since).length >= 3",
        arg=[job_id, polling_since], timeout=20_000,
    )
    polls = [t / 1000 for t in snapshot_fetches(page, job_id) if t >= polling_since]
    gaps = [b - a for a, b in zip(polls, polls[1:])]
    assert all(4.5 <= gap <= 6.5 for gap in gaps), f"polls should come every 5 s: {gaps}"
    assert int(page.locator("#overall").get_attribute("aria-valuenow")) > 0, "snapshots keep the bar moving"

    page.unroute("**/events*")
    page.wait_for_function("() => document.querySelector('#connection').dataset.state === 'live'", timeout=10_000)
    service.api("DELETE", f"/api/jobs/{job_id}")
    wait_for_status(page, "cancelled", 30)
    states = page.evaluate("window.connection")
    assert states.index("polling") < len(states) - 1 - states[::-1].index("live")


def test_the_first_start_login_link_works_once_and_logout_ends_the_session(tmp_path: Path, browser: object) -> None:
    service = Service(tmp_path / "data", admin_token=None)  # so the service makes a token and prints a link
    service.data_dir.mkdir()
    service.start()
    contexts = [browser.new_context(), browser.new_context()]
    try:
        printed = (tmp_path / "service-1.log").read_text()
        link = re.search(r"http://127\.0\.0\.1:\d+/\?code=[\w-]+", printed).group(0)
        token = (service.data_dir / "admin-token").read_text().strip()
        assert token not in printed

        page = contexts[0].new_page()
        page.goto(link)
        page.locator("#jobs-view").wait_for(state="visible")
        assert page.locator("#user").inner_text() == "admin (admin)"
        assert "code=" not in page.url  # out of the address bar and the history

        again = contexts[1].new_page()  # the same link, in another browser: used up
        again.goto(link)
        message = again.locator("#login-error")
        message.wait_for(state="visible")
        assert "used already or has expired" in message.inner_text() and "code=" not in again.url

        cookie = next(c["value"] for c in contexts[0].cookies() if c["name"] == COOKIE)
        page.locator("#logout").click()
        page.locator("#login-view").wait_for(state="visible")
        replayed = httpx.get(f"{service.url}/api/jobs", headers={"Cookie": f"{COOKIE}={cookie}"}, timeout=10)
        assert replayed.status_code == 401  # logging out ended the session on the server, not only in the browser
    finally:
        for context in contexts:
            context.close()
        service.stop()
