"""Read a job submission from any of the three body kinds POST /api/jobs accepts.

.ctt text with options in the query, JSON with options as fields, or a multipart
form with the file in field `instance`. Every refusal names the field or line.

Only the bytes are read on the event loop: decoding, parsing, the instance checks,
the pre-solve check and the .ctt text kept in the store all run in a worker thread
(`asyncio.to_thread`), so a large instance never stalls other requests or streams.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from aiohttp import web
from multidict import MultiDictProxy

from app.config import Config
from app.web.errors import ApiError, bad_request
from app.web.instance_limits import refuse_oversized
from app.web.request_body import decode_utf8, parse_json, require_utf8_charset
from app.web.text_rules import clean_name, refuse_control_in_instance, refuse_control_in_text, refuse_control_in_value
from solver.check import ERROR, WARNING, check
from solver.ctt import format_ctt, parse_ctt
from solver.errors import InstanceError
from solver.jsonform import instance_from_json
from solver.model import Instance

MAX_NAME_CHARS = 100
MAX_SEED = 2**31 - 1
INSTANCE_SOURCES = ("ctt", "instance", "sample")
OPTION_FIELDS = ("time_limit", "seed", "name")
JSON_FIELDS = (*INSTANCE_SOURCES, *OPTION_FIELDS)
FORM_FIELDS = ("instance", *OPTION_FIELDS)


@dataclass(frozen=True)
class Submission:
    instance: Instance
    instance_ctt: str  # the instance as .ctt text, as the store keeps it
    name: str
    time_limit: float
    seed: int
    warnings: tuple[str, ...]  # the pre-solve check's, for this instance and time limit


SampleLookup = Callable[[str], Instance | None]


async def read_submission(request: web.Request, config: Config, samples: SampleLookup) -> Submission:
    kind = request.content_type
    if kind == "application/json":
        _refuse_query(request, "a JSON body")
        require_utf8_charset(request)
        raw = await request.read()
        return await asyncio.to_thread(_from_json, raw, config, samples)
    if kind == "multipart/form-data":
        _refuse_query(request, "a multipart form")
        form = await _read_form(request)
        return await asyncio.to_thread(_from_form, form, config)
    if kind in ("text/plain", "application/octet-stream"):
        options = _single_values(request.query, OPTION_FIELDS, "Query parameter")
        require_utf8_charset(request)
        raw = await request.read()
        return await asyncio.to_thread(_from_ctt_body, raw, options, config)
    raise ApiError(415, "unsupported_media_type", f"Send text/plain, application/json or multipart/form-data, not {kind[:60]}.")


def _refuse_query(request: web.Request, body: str) -> None:
    """Options ride in the body here; a query parameter would be silently ignored, so it is refused."""
    for key in request.query:
        raise bad_request(f"Query parameter {key[:40]!r} is not read with {body}; give options as fields of the body.")


def _single_values(values: Mapping[str, Any], allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    """`values` (a query or form) as a dict, refusing unknown keys and repeated ones, so a typo is never ignored."""
    found: dict[str, Any] = {}
    for key, value in values.items():
        if key not in allowed:
            raise bad_request(f"{what} {key[:40]!r} is unknown; expected {', '.join(allowed)}.")
        if key in found:
            raise bad_request(f"{what} {key!r} is given more than once.")
        found[key] = value
    return found


def _finish(instance: Instance, options: Mapping[str, Any], config: Config) -> Submission:
    """Options read, then the edge's size limits and the pre-solve check: all off the loop."""
    refuse_control_in_instance(instance)
    refuse_oversized(instance)
    name = _name(options.get("name"), instance.name)
    time_limit = _time_limit(options.get("time_limit"), config)
    seed = _seed(options.get("seed"))
    warnings = _refuse_infeasible(instance, time_limit)
    text = format_ctt(instance)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON "\ud800" escape cannot be stored
        raise bad_request("The instance holds a lone UTF-16 surrogate (a \\ud800-style escape); send real characters.") from None
    return Submission(instance=instance, instance_ctt=text, name=name, time_limit=time_limit, seed=seed, warnings=warnings)


def _from_ctt_body(raw: bytes, options: Mapping[str, Any], config: Config) -> Submission:
    return _finish(_parse_ctt(decode_utf8(raw, "body"), "body"), options, config)


def _parse_ctt(text: str, where: str) -> Instance:
    if not text.strip():
        raise bad_request(f"The {where} is empty; expected an instance in .ctt format.")
    refuse_control_in_text(text, where)
    try:
        return parse_ctt(text, source=where)
    except InstanceError as err:
        raise ApiError(400, "invalid_instance", f"{where}: {err}") from None


def _from_json(raw: bytes, config: Config, samples: SampleLookup) -> Submission:
    body = parse_json(decode_utf8(raw, "body"))
    if not isinstance(body, dict):
        raise bad_request("Body must be a JSON object with one of the fields 'ctt', 'instance' or 'sample'.")
    _single_values(body, JSON_FIELDS, "Field")
    given = [k for k in INSTANCE_SOURCES if k in body]
    if len(given) != 1:
        raise bad_request("Give exactly one of the fields 'ctt', 'instance' or 'sample'.")
    return _finish(_json_instance(body, given[0], samples), body, config)


def _json_instance(body: Mapping[str, Any], source: str, samples: SampleLookup) -> Instance:
    if source == "instance":
        try:
            return instance_from_json(body["instance"])
        except InstanceError as err:
            # The reader names paths inside the instance; the request body has them under "instance".
            inside = err.field and not err.field.startswith("instance")
            raise ApiError(400, "invalid_instance", f"instance.{err}" if inside else str(err)) from None
    if not isinstance(body[source], str):
        raise bad_request(f"Field '{source}' must be a string.")
    if source == "ctt":
        return _parse_ctt(body["ctt"], "ctt")
    instance = samples(body["sample"])
    if instance is None:
        raise bad_request(f"Field 'sample': no sample named {body['sample'][:40]!r}; see GET /api/samples.")
    return instance


async def _read_form(request: web.Request) -> MultiDictProxy[Any]:
    """The parsed form. aiohttp's reader fails on malformed multipart with a variety of
    exception types (KeyError for no boundary, ValueError, LookupError for a bogus part
    charset, AssertionError...); all of them are the client's malformed body."""
    if not _boundary(request):
        raise bad_request("The multipart body needs a non-empty boundary in its Content-Type.")
    try:
        return await request.post()
    except web.HTTPException:
        raise  # 413 over the size limit, answered by the error middleware
    except Exception as err:  # noqa: BLE001 - see the docstring: the client's malformed body
        raise bad_request(f"The multipart body could not be read: {type(err).__name__}.") from None


def _boundary(request: web.Request) -> str:
    header = request.headers.get("Content-Type", "")
    for param in header.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "boundary":
            return value.strip().strip('"')
    return ""


def _from_form(form: MultiDictProxy[Any], config: Config) -> Submission:
    fields = _single_values(form, FORM_FIELDS, "Form field")
    part = fields.get("instance")
    if part is None:
        raise bad_request("Form field 'instance' (the .ctt file) is missing.")
    raw = part.file.read() if isinstance(part, web.FileField) else part
    text = decode_utf8(raw, "form field 'instance'") if isinstance(raw, (bytes, bytearray)) else raw
    options = {}
    for key in OPTION_FIELDS:
        value = fields.get(key)
        if isinstance(value, web.FileField):
            raise bad_request(f"Form field {key!r} must be a plain value, not a file.")
        if isinstance(value, (bytes, bytearray)):  # a part with a non-text Content-Type
            value = decode_utf8(value, f"form field {key!r}")
        if value is not None:
            options[key] = value
    return _finish(_parse_ctt(text, "instance"), options, config)


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
    except OverflowError:  # a JSON integer too large for a float
        raise bad_request(f"Field '{field}' is far too large.") from None
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
    """A name the caller gives is refused when odd; the instance's own is cleaned instead."""
    if value is None:
        return clean_name(default, MAX_NAME_CHARS)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_CHARS:
        raise bad_request(f"Field 'name' must be a non-empty string of at most {MAX_NAME_CHARS} characters.")
    refuse_control_in_value(value, "Field 'name'")
    return value.strip()
