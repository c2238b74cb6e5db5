"""Read a job submission from any of the three body kinds POST /api/jobs accepts.

.ctt text with options in the query, JSON with options as fields, or a multipart
form with the file in field `instance`. Every refusal names the field or line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from aiohttp import web

from app.config import Config
from app.web_errors import ApiError, bad_request
from solver.check import ERROR, WARNING, check
from solver.ctt import parse_ctt
from solver.errors import InstanceError
from solver.jsonform import instance_from_json
from solver.model import Instance

MAX_NAME_CHARS = 100
MAX_SEED = 2**31 - 1
INSTANCE_SOURCES = ("ctt", "instance", "sample")


@dataclass(frozen=True)
class Submission:
    instance: Instance
    name: str
    time_limit: float
    seed: int
    warnings: tuple[str, ...]  # the pre-solve check's, for this instance and time limit


SampleLookup = Callable[[str], Instance | None]


async def read_submission(request: web.Request, config: Config, samples: SampleLookup) -> Submission:
    kind = request.content_type
    if kind == "application/json":
        instance, options = await _from_json(request, samples)
    elif kind == "multipart/form-data":
        instance, options = await _from_form(request)
    elif kind in ("text/plain", "application/octet-stream"):
        instance = _parse_ctt(await request.text(), "body")
        options = dict(request.query)
    else:
        raise ApiError(415, "unsupported_media_type", f"Send text/plain, application/json or multipart/form-data, not {kind}.")
    name = _name(options.get("name"), instance.name)
    time_limit = _time_limit(options.get("time_limit"), config)
    seed = _seed(options.get("seed"))
    warnings = _refuse_infeasible(instance, time_limit)
    return Submission(instance=instance, name=name, time_limit=time_limit, seed=seed, warnings=warnings)


def _parse_ctt(text: str, where: str) -> Instance:
    if not text.strip():
        raise bad_request(f"The {where} is empty; expected an instance in .ctt format.")
    try:
        return parse_ctt(text, source=where)
    except InstanceError as err:
        raise ApiError(400, "invalid_instance", f"{where}: {err}") from None


async def _from_json(request: web.Request, samples: SampleLookup) -> tuple[Instance, Mapping[str, Any]]:
    try:
        body = await request.json()
    except ValueError as err:
        raise bad_request(f"Body is not valid JSON: {err}.") from None
    if not isinstance(body, dict):
        raise bad_request("Body must be a JSON object with one of the fields 'ctt', 'instance' or 'sample'.")
    given = [k for k in INSTANCE_SOURCES if k in body]
    if len(given) != 1:
        raise bad_request("Give exactly one of the fields 'ctt', 'instance' or 'sample'.")
    source = given[0]
    if source == "instance":
        try:
            return instance_from_json(body["instance"]), body
        except InstanceError as err:
            # The reader names paths inside the instance; the request body has them under "instance".
            inside = err.field and not err.field.startswith("instance")
            raise ApiError(400, "invalid_instance", f"instance.{err}" if inside else str(err)) from None
    if not isinstance(body[source], str):
        raise bad_request(f"Field '{source}' must be a string.")
    if source == "ctt":
        return _parse_ctt(body["ctt"], "ctt"), body
    instance = samples(body["sample"])
    if instance is None:
        raise bad_request(f"Field 'sample': no sample named {body['sample'][:40]!r}; see GET /api/samples.")
    return instance, body


async def _from_form(request: web.Request) -> tuple[Instance, Mapping[str, Any]]:
    form = await request.post()
    part = form.get("instance")
    if part is None:
        raise bad_request("Form field 'instance' (the .ctt file) is missing.")
    raw = part.file.read() if isinstance(part, web.FileField) else part
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise bad_request("Form field 'instance' is not UTF-8 text.") from None
    options = {k: v for k, v in form.items() if k != "instance" and isinstance(v, str)}
    return _parse_ctt(text, "instance"), options


def _refuse_infeasible(instance: Instance, time_limit: float) -> tuple[str, ...]:
    """Refuse an instance the pre-solve check proves infeasible; else its warnings."""
    findings = check(instance, time_limit=time_limit)
    errors = [f.message for f in findings if f.level == ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise ApiError(400, "infeasible_instance", errors[0] + more)
    return tuple(f.message for f in findings if f.level == WARNING)


def _number(value: Any, field: str) -> float:
    """A JSON number, or a query/form string holding one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise bad_request(f"Field '{field}' must be a number.")
    try:
        number = float(value)
    except ValueError:
        raise bad_request(f"Field '{field}' must be a number, not {str(value)[:40]!r}.") from None
    if not math.isfinite(number):
        raise bad_request(f"Field '{field}' must be a finite number.")
    return number


def _time_limit(value: Any, config: Config) -> float:
    if value is None:
        return config.time_limit
    seconds = _number(value, "time_limit")
    if not 1 <= seconds <= config.max_time_limit:
        raise bad_request(f"Field 'time_limit' must be between 1 and {config.max_time_limit:g} seconds, not {seconds:g}.")
    return seconds


def _seed(value: Any) -> int:
    if value is None:
        return 0
    number = _number(value, "seed")
    if number != int(number) or not 0 <= number <= MAX_SEED:
        raise bad_request(f"Field 'seed' must be a whole number from 0 to {MAX_SEED}.")
    return int(number)


def _name(value: Any, default: str) -> str:
    if value is None:
        return default[:MAX_NAME_CHARS]
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_CHARS:
        raise bad_request(f"Field 'name' must be a non-empty string of at most {MAX_NAME_CHARS} characters.")
    return value.strip()
