"""`timetabler serve | solve | generate`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Sequence

from app import config as settings
from app.commands.terminal import Outcome, ProgressBar, cost_table
from app.security.auth import ADMIN_TOKEN_FILE, Auth
from app.storage.redis_keys import secret_key
from app.storage.datadir_lock import DataDirInUse, lock_data_dir
from saga.events import FAILED
from saga.jobs import Feasibility, JobSpec
from saga.process import warm_solver
from saga.reporter import shortfall
from saga.runner import JobRunner
from solver.check import ERROR, WARNING, check
from solver.ctt import format_ctt, format_sol, parse_ctt
from solver.errors import InstanceError
from solver.generate import generate
from solver.model import Instance

CLI_JOB = "cli"
# Exit statuses of `solve` (README, "Command line").
EXIT_COMPLETE, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INCOMPLETE = 0, 1, 2, 3


class UserError(Exception):
    """Bad input from the command line: shown as one line, exit status 2."""


def _serve(args: argparse.Namespace) -> int:
    from app.web import serving  # the web stack loads only for `serve`
    from app.web.application import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = settings.load(args)
        # Before anything touches the data dir: a second service on it must change nothing.
        data_lock = lock_data_dir(config.data_dir)  # held until this process ends
        auth, generated = Auth.from_config(config)
    except (ValueError, OSError, DataDirInUse) as err:  # TokenFileError and a too-short token are ValueErrors
        raise UserError(str(err)) from None
    host = "localhost" if config.host in ("0.0.0.0", "::") else config.host
    if generated:
        # A one-time code, not the token: the link may linger in a terminal's scrollback or a log.
        code = auth.issue_login_code(config.login_code_ttl)
        print(f"Open this once, within {_duration(config.login_code_ttl)}, to log in as admin:\n"
              f"    http://{host}:{config.port}/?code={code}", flush=True)
    elif config.admin_token is None and config.redis:
        print(f"Admin token: kept in Redis, read it with `redis-cli -u {config.redis} GET {secret_key(ADMIN_TOKEN_FILE)}`",
              flush=True)
    elif config.admin_token is None:
        print(f"Admin token: see {config.data_dir / ADMIN_TOKEN_FILE}", flush=True)
    warm_solver()
    with data_lock:
        serving.run(create_app(config, auth), config)  # web.run_app, plus the connection caps
    return 0


def _worker(args: argparse.Namespace) -> int:
    from app.commands import worker  # loads Redis only for `worker`

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = settings.load(args)
    except ValueError as err:
        raise UserError(str(err)) from None
    if not config.redis:
        raise UserError("a worker needs --redis URL (or TIMETABLER_REDIS_URL): the queue it takes jobs from")
    warm_solver()
    worker.run(config)
    return 0


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 120 else f"{seconds:g} seconds"


def _read_instance(path: Path, time_limit: float) -> tuple[Instance, tuple[str, ...]]:
    """The instance in `path` and the pre-solve check's warnings for it and `time_limit`;
    a file that cannot be read, parsed, or is provably infeasible is a UserError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    try:
        instance = parse_ctt(text, source=str(path))
    except InstanceError as err:
        raise UserError(f"{path}: {err}") from None
    findings = check(instance, time_limit=time_limit)
    errors = [f.message for f in findings if f.level == ERROR]
    if errors:
        raise UserError(f"{path}: {errors[0]}")
    return instance, tuple(f.message for f in findings if f.level == WARNING)


async def _run_job(spec: JobSpec) -> Outcome:
    """Run one job in a child process with a live progress line; Ctrl-C stops it early
    and keeps the best timetable found so far."""
    result = Outcome()
    runner = JobRunner(ProgressBar(sys.stderr), result, slots=1)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, lambda: asyncio.ensure_future(runner.cancel(spec.job_id)))
    try:
        await runner.submit(spec)
        await runner.wait(spec.job_id)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        await runner.close()
    return result


def _solve(args: argparse.Namespace) -> int:
    if args.time <= 0:
        raise UserError("--time must be a positive number of seconds")
    instance, warnings = _read_instance(args.file, args.time)
    for warning in warnings:
        print(f"timetabler: warning: {warning}", file=sys.stderr)
    out = args.out or args.file.with_suffix(".sol")
    outcome = asyncio.run(_run_job(JobSpec(CLI_JOB, instance, args.time, seed=args.seed))).value
    if outcome is None or outcome.timetable is None or outcome.cost is None:
        reason = outcome.error if outcome else "the solver stopped without a result"
        print(f"timetabler: error: no timetable: {reason}", file=sys.stderr)
        return EXIT_FAILED
    out.write_text(format_sol(outcome.timetable), encoding="utf-8")
    print(cost_table(outcome.cost))
    print(f"{outcome.status}: wrote {out}")
    return _verdict(outcome.status, Feasibility.of(outcome.timetable, outcome.cost))


def _verdict(status: str, feasibility: Feasibility) -> int:
    """Say plainly when the timetable is incomplete; the exit status tells a script."""
    if not feasibility.feasible:
        print(f"incomplete timetable: {shortfall(feasibility)}")
    if status == FAILED:
        return EXIT_FAILED
    return EXIT_COMPLETE if feasibility.feasible else EXIT_INCOMPLETE


def _generate(args: argparse.Namespace) -> int:
    try:
        instance = generate(courses=args.courses, rooms=args.rooms, curricula=args.curricula, days=args.days,
                            periods_per_day=args.periods_per_day, seed=args.seed, name=args.name)
    except ValueError as err:
        raise UserError(str(err)) from None
    text = format_ctt(instance)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="timetabler", description="Curriculum-based course timetabling (ITC-2007 track 3).")
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web service")
    settings.add_arguments(serve)
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="solve jobs from the Redis queue that `serve --redis` fills")
    settings.add_arguments(worker)
    worker.set_defaults(run=_worker)

    solve = commands.add_parser("solve", help="solve a .ctt file and write a .sol file")
    solve.add_argument("file", type=Path, help="instance in .ctt format")
    solve.add_argument("--time", type=float, default=60.0, help="seconds to search (default 60)")
    solve.add_argument("--seed", type=int, default=0)
    solve.add_argument("--out", type=Path, help="solution file (default: FILE with .sol)")
    solve.set_defaults(run=_solve)

    gen = commands.add_parser("generate", help="write a random feasible instance in .ctt format")
    for flag, default in (("--courses", 20), ("--rooms", 5), ("--curricula", 8), ("--days", 5), ("--periods-per-day", 6), ("--seed", 0)):
        gen.add_argument(flag, type=int, default=default, help=f"(default {default})")
    gen.add_argument("--name", help="instance name")
    gen.add_argument("--out", type=Path, help="output file (default: stdout)")
    gen.set_defaults(run=_generate)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except UserError as err:
        print(f"timetabler: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
