"""`timetabler` as a user runs it: real subprocesses, real files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from app import config as settings
from app.commands.cli import _read_instance, parser
from app.config import Config
from solver.ctt import format_ctt, parse_ctt, parse_sol
from solver.evaluate import evaluate_assignments
from solver.generate import generate
from tests.app_support import INCOMPLETE_CTT, TOY_CTT, ZERO_ROOM_CTT, ZERO_ROOM_WARNING
from tests.browser_support import free_port, wait_until

REPO = Path(__file__).resolve().parents[1]


def timetabler(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_solve_writes_a_feasible_sol(tmp_path: Path) -> None:
    (tmp_path / "toy.ctt").write_text(TOY_CTT)
    run = timetabler("solve", "toy.ctt", "--time", "2", "--seed", "1", "--out", "toy.sol", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    instance = parse_ctt(TOY_CTT)
    cost = evaluate_assignments(instance, parse_sol((tmp_path / "toy.sol").read_text(), instance))
    assert cost.hard == 0
    assert re.search(rf"^total soft cost\s+{cost.soft}$", run.stdout, re.MULTILINE), run.stdout
    assert "100.0%" in run.stderr  # the progress line reached the end
    lines = re.split(r"[\r\n]+", run.stderr.strip())
    midway = r"\d+\.\d%\s+\S.* ETA \d+:\d\d\s+best \d+ hard / \d+ soft"  # stage, %, ETA, best cost
    assert any(re.search(midway, line) and "100.0%" not in line for line in lines), lines
    assert re.search(rf"100\.0%.*ETA 0:00\s+best 0 hard / {cost.soft} soft", run.stderr), lines[-3:]
    assert "incomplete" not in run.stdout


def test_solve_prints_the_pre_solve_warnings_before_the_progress(tmp_path: Path) -> None:
    (tmp_path / "zero.ctt").write_text(ZERO_ROOM_CTT)
    run = timetabler("solve", "zero.ctt", "--time", "2", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = re.split(r"[\r\n]+", run.stderr.strip())
    assert lines[0] == f"timetabler: warning: {ZERO_ROOM_WARNING}", lines[:3]
    assert sum("warning" in line for line in lines) == 1 and "100.0%" in lines[-1]
    assert (tmp_path / "zero.sol").exists()


def test_solve_checks_the_instance_against_its_time(tmp_path: Path) -> None:
    big = generate(courses=1000, rooms=140, curricula=330, periods_per_day=8, seed=1)  # ~4,300 lectures
    (tmp_path / "big.ctt").write_text(format_ctt(big))
    _, warnings = _read_instance(tmp_path / "big.ctt", 10.0)  # what `solve big.ctt --time 10` prints
    assert any(w.startswith(f"This instance has {big.total_lectures:,} lectures; a 10 s budget") for w in warnings)
    _, enough = _read_instance(tmp_path / "big.ctt", 3600.0)
    assert not any("budget" in w for w in enough)


def test_an_incomplete_timetable_is_written_said_and_exits_3(tmp_path: Path) -> None:
    (tmp_path / "triangle.ctt").write_text(INCOMPLETE_CTT)
    run = timetabler("solve", "triangle.ctt", "--time", "1", "--out", "triangle.sol", cwd=tmp_path)
    assert run.returncode == 3, run.stdout + run.stderr
    instance = parse_ctt(INCOMPLETE_CTT)
    placed = parse_sol((tmp_path / "triangle.sol").read_text(), instance)
    cost = evaluate_assignments(instance, placed)
    unplaced = instance.total_lectures - len(placed)
    assert unplaced >= 1 and cost.hard >= unplaced
    assert re.search(rf"^total hard violations\s+{cost.hard}$", run.stdout, re.MULTILINE), run.stdout
    (verdict,) = [line for line in run.stdout.splitlines() if "incomplete" in line]
    assert verdict.startswith(f"incomplete timetable: {unplaced} of 6 lectures unplaced"), verdict


def test_bad_file_is_one_line_and_nonzero(tmp_path: Path) -> None:
    (tmp_path / "bad.ctt").write_text(TOY_CTT.replace("Rooms: 3", "Rooms: three"))
    run = timetabler("solve", "bad.ctt", "--time", "1", cwd=tmp_path)
    assert run.returncode != 0
    assert run.stderr.count("\n") == 1 and "line 3" in run.stderr and "Traceback" not in run.stderr
    missing = timetabler("solve", "nope.ctt", cwd=tmp_path)
    assert missing.returncode != 0 and missing.stderr.count("\n") == 1 and "nope.ctt" in missing.stderr


def test_generate_writes_a_readable_instance(tmp_path: Path) -> None:
    run = timetabler("generate", "--courses", "9", "--rooms", "3", "--curricula", "4", "--seed", "5", "--out", "g.ctt", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    instance = parse_ctt((tmp_path / "g.ctt").read_text())
    assert (len(instance.courses), len(instance.rooms), len(instance.curricula)) == (9, 3, 4)
    again = timetabler("generate", "--courses", "9", "--rooms", "3", "--curricula", "4", "--seed", "5", cwd=tmp_path)
    assert again.stdout == (tmp_path / "g.ctt").read_text()  # same seed, same instance


def test_settings_flag_beats_environment_beats_default() -> None:
    args = parser().parse_args(["serve", "--port", "9001"])
    got = settings.load(args, {"TIMETABLER_PORT": "9002", "TIMETABLER_SLOTS": "3", "TIMETABLER_CORS_ORIGIN": "https://a.example/, https://b.example"})
    assert (got.port, got.slots, got.cors_origin) == (9001, 3, ("https://a.example", "https://b.example"))
    assert got.max_active_jobs == Config.max_active_jobs


def test_serve_refuses_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "tokens").write_text("only-a-token\n")
    env_bad = subprocess.run([sys.executable, "-m", "app", "serve"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(REPO), "TIMETABLER_PORT": "eighty"})
    assert env_bad.returncode == 2 and env_bad.stderr.count("\n") == 1 and "TIMETABLER_PORT" in env_bad.stderr
    tokens_bad = timetabler("serve", "--tokens", "tokens", "--data-dir", "d", cwd=tmp_path)
    assert tokens_bad.returncode == 2 and "line 1" in tokens_bad.stderr and tokens_bad.stderr.count("\n") == 1


def test_serve_refuses_tokens_shorter_than_16_characters(tmp_path: Path) -> None:
    (tmp_path / "tokens").write_text("long-enough-token-1 alice\nshort-token bob\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for flags, expected in (
        (["--tokens", "tokens"], "line 2: the token of bob is 11 characters long; tokens must have at least 16"),
        (["--admin-token", "too-short"], "the admin token (--admin-token, TIMETABLER_ADMIN_TOKEN or admin-token) is 9"),
    ):
        # Before the check the service would start and serve: the timeout makes that a failure.
        run = subprocess.run([sys.executable, "-m", "app", "serve", "--port", str(free_port()), "--data-dir", "d", *flags],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
        assert run.returncode == 2 and run.stderr.count("\n") == 1 and expected in run.stderr, run.stderr
        assert "short-token" not in run.stderr and "too-short" not in run.stderr  # the message never shows a token


def _serve_once(tmp_path: Path, port: int) -> tuple[str, str, list[int]]:
    """Start `timetabler serve` on a fresh-or-kept data dir, call it with the token, trade
    the printed login link's code for a session twice, stop it; (what it printed, its log,
    the two logins' statuses, empty when no link was printed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMETABLER_")}
    command = [sys.executable, "-m", "app", "serve", "--port", str(port), "--data-dir", "data"]
    with subprocess.Popen(command, cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as service:
        try:
            printed = service.stdout.readline()
            if printed.startswith("Open this once"):  # the link follows on its own line
                printed += service.stdout.readline()
            token = (tmp_path / "data" / "admin-token").read_text().strip()
            wait_until(lambda: _answers(f"http://127.0.0.1:{port}/api/health"), 30, "the service")
            headers = {"Authorization": f"Bearer {token}"}
            assert httpx.get(f"http://127.0.0.1:{port}/api/jobs", headers=headers).status_code == 200
            codes = re.findall(r"\?code=([\w-]+)", printed)
            logins = []
            for code in codes * 2:
                assert httpx.get(f"http://127.0.0.1:{port}/?code={code}").status_code == 200  # the page
                logins.append(httpx.post(f"http://127.0.0.1:{port}/api/session", json={"code": code}).status_code)
        finally:
            service.terminate()
        _, log = service.communicate(timeout=30)
    return printed, log, logins


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_first_start_prints_a_one_time_login_url_and_never_logs_the_token(tmp_path: Path) -> None:
    port = free_port()
    printed, log, logins = _serve_once(tmp_path, port)
    token = (tmp_path / "data" / "admin-token").read_text().strip()
    lines = printed.splitlines()
    assert lines[0] == "Open this once, within 15 minutes, to log in as admin:"
    assert re.fullmatch(rf"    http://127\.0\.0\.1:{port}/\?code=[\w-]{{20,}}", lines[1]) and token not in printed
    assert logins == [200, 401]  # the code opens one session, then it is spent
    code = lines[1].rsplit("=", 1)[1]
    assert "GET / 200" in log and token not in log and code not in log  # the access log drops the query string
    assert oct((tmp_path / "data" / "admin-token").stat().st_mode & 0o777) == "0o600"
    printed_again, log, logins = _serve_once(tmp_path, port)  # the token is kept, not shown again
    assert token not in printed_again + log and "admin-token" in printed_again and logins == []
