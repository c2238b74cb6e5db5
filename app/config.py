"""Every setting of the service in one table: its flag, its TIMETABLER_* variable, its default.

A flag beats the environment, which beats the default.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping

MB = 1024 * 1024


def _origins(text: str) -> tuple[str, ...]:
    return tuple(o.strip().rstrip("/") for o in text.split(",") if o.strip())


def _count(text: str) -> int:
    """A limit that is a whole number >= 0 (argparse and `load` report the ValueError)."""
    value = int(text)
    if value < 0:
        raise ValueError(f"{text} is negative")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:  # also refuses nan
        raise ValueError(f"{text} is not a positive number of seconds")
    return value


def _switch(text: str) -> bool:
    """On or off; as a flag it takes no value (`--trust-proxy`), in the environment 1/0, true/false, yes/no, on/off."""
    words = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
    if text.strip().lower() not in words:
        raise ValueError(f"{text} is not one of 1/0, true/false, yes/no, on/off")
    return words[text.strip().lower()]


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("timetabler-data")
    slots: int | None = None
    admin_token: str | None = None
    tokens: Path | None = None
    max_body: int = 5 * MB
    max_active_jobs: int = 3
    cors_origin: tuple[str, ...] = ()
    heartbeat: float = 15.0
    time_limit: float = 60.0
    max_time_limit: float = 3600.0
    max_attempts: int = 3
    event_log: int = 1000
    body_timeout: float = 30.0
    max_connections: int = 2000
    max_connections_per_client: int = 100
    max_streams: int = 1000
    max_streams_per_user: int = 20
    session_idle: float = 12 * 3600.0
    session_lifetime: float = 7 * 24 * 3600.0
    login_code_ttl: float = 900.0
    login_failures: int = 10
    login_window: float = 60.0
    trust_proxy: bool = False
    redis: str | None = None
    lease: float = 60.0
    metrics_port: int = 0
    event_retention: float = 2 * 3600.0
    job_retention: float = 30 * 24 * 3600.0


@dataclass(frozen=True)
class Setting:
    name: str  # Config field; flag --name-with-dashes; env TIMETABLER_NAME unless `env` is given
    parse: Callable[[str], Any]
    help: str
    env: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def default(self) -> Any:
        return getattr(Config, self.name)

    @property
    def variable(self) -> str:
        return self.env or "TIMETABLER_" + self.name.upper()


SETTINGS = (
    Setting("host", str, "address to listen on"),
    Setting("port", int, "port to listen on"),
    Setting("data_dir", Path, "where the database and secrets live"),
    Setting("slots", int, "jobs solved at once (default: CPU cores)"),
    Setting("admin_token", str, "admin bearer token (default: generated into the data dir)"),
    Setting("tokens", Path, "file of 'TOKEN USER [admin]' lines"),
    Setting("max_body", int, "largest accepted request body, bytes"),
    Setting("max_active_jobs", int, "queued+running jobs allowed per user"),
    Setting("cors_origin", _origins, "comma-separated origins allowed to call the API with credentials"),
    Setting("heartbeat", float, "seconds between SSE heartbeats"),
    Setting("time_limit", float, "default solving time per job, seconds"),
    Setting("max_time_limit", float, "largest time limit a job may ask for, seconds"),
    Setting("max_attempts", int, "runs of a job interrupted by restarts before it fails"),
    Setting("event_log", int, "progress events kept per job"),
    Setting("body_timeout", _seconds, "seconds a client may take to send a request body; slower ones get 408 and are closed"),
    Setting("max_connections", _count, "open connections in total; more are answered 503 and closed (0: no cap)"),
    Setting("max_connections_per_client", _count, "open connections per client address (0: no cap, e.g. behind a proxy)"),
    Setting("max_streams", _count, "open event streams in total (0: no cap)"),
    Setting("max_streams_per_user", _count, "open event streams per user (0: no cap)"),
    Setting("session_idle", _seconds, "seconds without a request after which a login session ends"),
    Setting("session_lifetime", _seconds, "seconds after login after which a session ends, used or not"),
    Setting("login_code_ttl", _seconds, "seconds the first start's one-time login link stays valid"),
    Setting("login_failures", _count, "failed logins (and, apart, unknown bearer tokens) per client address per --login-window before 429 (0: no limit)"),
    Setting("login_window", _seconds, "seconds over which --login-failures are counted"),
    Setting("trust_proxy", _switch, "believe X-Forwarded-Proto/-Host/-For from a reverse proxy in front"),
    Setting("redis", str, "Redis URL (redis://host:6379/0) shared by web instances and workers; "
                          "with it `serve` solves nothing itself unless --slots is given (default: embedded SQLite)",
            env="TIMETABLER_REDIS_URL"),
    Setting("lease", _seconds, "seconds a worker's claim on a job lasts without renewal before another worker takes it over"),
    Setting("metrics_port", _count, "worker only: port of its /metrics and /api/health on --host (0: none)"),
    Setting("event_retention", _seconds, "seconds after a job ends before its event log is cut to the final event"),
    Setting("job_retention", _seconds, "seconds after a job ends before it is deleted with its log and timetable"),
)


assert [s.name for s in SETTINGS] == [f.name for f in fields(Config)], "SETTINGS and Config must list the same fields"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; unset flags stay None so the environment can fill them."""
    for s in SETTINGS:
        default = s.default if s.default not in (None, ()) else "none"
        if s.parse is _switch:  # a bare flag turns it on
            parser.add_argument(s.flag, dest=s.name, action="store_const", const=True, default=None,
                                help=f"{s.help} [{s.variable}, default off]")
            continue
        parser.add_argument(s.flag, dest=s.name, type=s.parse, default=None, help=f"{s.help} [{s.variable}, default {default}]")


def load(flags: Mapping[str, Any] | argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Resolve every setting; raises ValueError naming the variable when an env value does not parse."""
    given = vars(flags) if isinstance(flags, argparse.Namespace) else dict(flags or {})
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for s in SETTINGS:
        if given.get(s.name) is not None:
            values[s.name] = given[s.name]
        elif env.get(s.variable):
            try:
                values[s.name] = s.parse(env[s.variable])
            except ValueError:
                raise ValueError(f"{s.variable}={env[s.variable]!r} is not a valid {s.help}") from None
    return Config(**values)
