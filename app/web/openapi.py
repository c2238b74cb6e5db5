"""The OpenAPI 3.1 description of the HTTP API (served at GET /api/openapi.json).

tests/test_openapi.py keeps it true: its paths and methods must equal the router's,
and real responses must carry documented status codes and required fields.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    words = {400: "Bad input; detail names the field or line", 401: "No valid token or session",
             404: "No such job (or not yours)", 405: "Method not allowed", 413: "Body over the size limit",
             408: "Body not sent within --body-timeout",
             415: "Unsupported content type, or a charset other than UTF-8",
             503: "Store unreachable, or its database locked (Retry-After says when to try again)",
             507: "The disk holding the database is full: nothing can be saved now",
             403: "Cross-site request refused: a session cookie from a page that is not this service's (or a --cors-origin)",
             429: "Too many active jobs for this user, or too many failed logins / unknown bearer tokens from this"
                  " address (Retry-After says when to try again)"}
    return {str(c): _json(_ref("Error"), words[c]) for c in codes}


def _op(summary: str, responses: dict[str, Any], *, public: bool = False, **extra: Any) -> dict[str, Any]:
    # A bad bearer token is 401, and 429 once an address has sent too many of them.
    op = {"summary": summary, "responses": {**responses, **({} if public else _errors(401, 429))}, **extra}
    if public:
        op["security"] = []
    return op


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


JOB_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
OPTIONS = {
    "time_limit": {"type": "number", "minimum": 1, "description": "seconds of solving (default 60, bounded by the server)"},
    "seed": {"type": "integer", "minimum": 0},
    "name": {"type": "string", "maxLength": 100,
             "description": "default: the instance's name; no control characters, line breaks or bidi overrides"},
}
LINKS = _obj(["self", "events", "timetable"], self={"type": "string"}, events={"type": "string"}, timetable={"type": "string"})
# A finished job's verdict on its timetable (saga.jobs.Feasibility); null while unfinished or without a timetable.
VERDICT = {
    "feasible": {"type": ["boolean", "null"], "description": "no hard violations: every lecture placed, no clashes"},
    "unplaced": {"type": ["integer", "null"], "description": "lectures without a period"},
    "hard_violations": {"type": ["integer", "null"], "description": "hard violations, unplaced lectures included"},
}
# The pre-solve check's warnings (solver.check): accepted, but costly or odd; one line each.
WARNINGS = {"type": "array", "items": {"type": "string"},
            "description": "what the pre-solve check found costly or odd, one sentence each; empty when none"}

SCHEMAS: dict[str, Any] = {
    "Error": _obj(["error", "detail"], error={"type": "string"}, detail={"type": "string"}),
    "Links": LINKS,
    "Cost": {"type": "object", "required": ["hard", "soft"], "additionalProperties": {"type": "integer"}},
    "Event": _obj(["job_id", "seq", "status", "overall_progress", "message"], job_id={"type": "string"},
                  seq={"type": "integer"}, status={"type": "string"}, stage={"type": ["string", "null"]},
                  overall_progress={"type": "number"}, eta_seconds={"type": ["number", "null"]}, message={"type": "string"},
                  **VERDICT),
    "Job": _obj(["id", "name", "owner", "status", "created_at", "attempt", "time_limit", "seed", "warnings", "latest",
                 "result", "links", *VERDICT],
                id={"type": "string"}, name={"type": "string"}, owner={"type": "string"}, status={"type": "string"},
                created_at={"type": "number"}, attempt={"type": "integer"}, time_limit={"type": "number"},
                seed={"type": "integer"}, warnings=WARNINGS, latest={"oneOf": [_ref("Event"), {"type": "null"}]},
                result={"oneOf": [_obj(["hard", "soft", "cost"], hard={"type": "integer"}, soft={"type": "integer"},
                                       cost=_ref("Cost")), {"type": "null"}]},
                links=_ref("Links"), **VERDICT),
    "Accepted": _obj(["id", "status", "links", "warnings"], id={"type": "string"}, status={"type": "string"},
                     links=_ref("Links"), warnings=WARNINGS),
    "Timetable": _obj(["job_id", "status", "cost", "lectures", "unplaced", "violations", "feasible", "unplaced_count",
                       "hard_violations"], job_id={"type": "string"},
                      status={"type": "string"}, cost=_ref("Cost"), lectures={"type": "array"},
                      unplaced={"type": "array", "description": "the lectures without a period"},
                      violations={"type": "array", "description": "hard violations in words, at most 1000"},
                      feasible={"type": "boolean"},
                      unplaced_count={"type": "integer", "description": "length of unplaced"},
                      hard_violations={"type": "integer"}),
}

SUBMIT_BODY = {
    "required": True,
    "content": {
        "text/plain": {"schema": {"type": "string", "description": "instance in .ctt format; options in the query"}},
        JSON: {"schema": {"type": "object", "additionalProperties": False,
                          "description": "exactly one of ctt, instance, sample; plus options (any other field is a 400)",
                          "properties": {"ctt": {"type": "string"}, "instance": {"type": "object"},
                                         "sample": {"type": "string"}, **OPTIONS}}},
        "multipart/form-data": {"schema": {"type": "object", "required": ["instance"], "additionalProperties": False,
                                           "properties": {"instance": {"type": "string", "format": "binary"}, **OPTIONS}}},
    },
}

PATHS: dict[str, Any] = {
    "/api/session": {
        "post": _op("Trade a token, or the first start's one-time login code, for an HttpOnly session cookie", {
            "200": _json(_obj(["user", "admin"], user={"type": "string"}, admin={"type": "boolean"}), "Logged in"),
            **_errors(400, 401, 403, 415, 429)}, public=True,
            requestBody={"required": True, "content": {JSON: {"schema": {
                "description": "exactly one of token and code",
                "oneOf": [_obj(["token"], token={"type": "string"}), _obj(["code"], code={"type": "string"})]}}}}),
        "delete": _op("Log out: end the session on the server and clear the cookie",
                      {"200": _json({"type": "object"}, "Logged out"), **_errors(403)}, public=True),
    },
    "/api/jobs": {
        "post": _op("Submit an instance to solve", {"202": _json(_ref("Accepted"), "Queued"),
                                                     **_errors(400, 403, 408, 413, 415, 503, 507)},
                    requestBody=SUBMIT_BODY, parameters=[_query(k, v, k) for k, v in OPTIONS.items()]),
        "get": _op("The caller's jobs, newest first (an admin sees all)", {
            "200": _json(_obj(["jobs", "total", "limit", "offset"], jobs={"type": "array", "items": _ref("Job")},
                              total={"type": "integer"}, limit={"type": "integer"}, offset={"type": "integer"}), "A page"),
            **_errors(400)},
            parameters=[_query("limit", {"type": "integer", "minimum": 0, "maximum": 100}, "page size (default 20)"),
                        _query("offset", {"type": "integer", "minimum": 0}, "jobs to skip")]),
    },
    "/api/jobs/{id}": {
        "parameters": [JOB_ID],
        "get": _op("A job's snapshot", {"200": _json(_ref("Job"), "The job"), **_errors(404)}),
        "delete": _op("Cancel a job (idempotent)", {
            "200": _json(_obj(["status"], status={"type": "string"}), "Already finished; its final status"),
            "202": _json(_obj(["status"], status={"type": "string", "enum": ["stopping", "cancelled"]}), "Stopping"),
            **_errors(403, 404)}),
    },
    "/api/jobs/{id}/timetable": {
        "parameters": [JOB_ID],
        "get": _op("The job's best timetable", {
            "200": {"description": "The timetable", "content": {JSON: {"schema": _ref("Timetable")},
                                                                "text/plain": {"schema": {"type": "string"}},
                                                                "text/csv": {"schema": {"type": "string"}}}},
            **_errors(400, 404)},
            parameters=[_query("format", {"type": "string", "enum": ["json", "sol", "csv"]}, "default json")]),
    },
    "/api/jobs/{id}/events": {
        "parameters": [JOB_ID],
        "get": _op("Live progress as server-sent events (connected, progress, snapshot, done)", {
            "200": {"description": "An event stream; `progress` and `snapshot` carry an Event, `done` carries "
                                   "status, feasible, unplaced, hard_violations and links",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}}},
            **_errors(404)}),
    },
    "/api/samples": {
        "get": _op("Built-in generated instances, usable as {\"sample\": name}", {
            "200": _json(_obj(["samples"], samples={"type": "array", "items": _obj(
                ["name", "courses", "lectures"], name={"type": "string"}, courses={"type": "integer"},
                lectures={"type": "integer"})}), "The samples")}),
    },
    "/api/health": {
        "get": _op("Store reachable, solver slots busy and free", {
            "200": _json(_obj(["status", "store", "slots"], status={"type": "string"}, store={"type": "boolean"},
                              slots=_obj(["total", "busy", "free"])), "Healthy"),
            **_errors(503)}, public=True),
    },
    "/api/openapi.json": {"get": _op("This description", {"200": _json({"type": "object"}, "OpenAPI 3.1")}, public=True)},
    "/metrics": {"get": _op("Prometheus metrics", {"200": {"description": "Prometheus text format",
                                                          "content": {"text/plain": {"schema": {"type": "string"}}}}},
                            public=True)},
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Timetabler", "version": "0.1.0",
             "description": "Curriculum-based course timetabling (ITC-2007 track 3) with live progress."},
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                            "session": {"type": "apiKey", "in": "cookie", "name": "timetabler_session"}},
    },
    "security": [{"bearer": []}, {"session": []}],
}
