"""Who is calling: bearer tokens, session cookies, and the zero-set-up admin token.

Tokens are compared in constant time and never logged. A session cookie carries
the user name signed with HMAC under a secret kept in the data dir, so sessions
survive restarts and EventSource (which cannot send headers) is authenticated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from aiohttp import web

from app.keys import AUTH, STORE, USER
from app.store import JobRecord
from app.web_errors import ApiError, bad_request, not_found

COOKIE = "timetabler_session"
ADMIN_USER = "admin"
ADMIN_TOKEN_FILE = "admin-token"
SECRET_FILE = "session-secret"
PUBLIC_PATHS = frozenset({"/api/session", "/api/health", "/api/openapi.json"})


@dataclass(frozen=True)
class User:
    name: str
    admin: bool = False


class TokenFileError(ValueError):
    pass


def read_tokens_file(path: Path) -> dict[str, User]:
    """`TOKEN USER [admin]` per line; blank lines and `#` comments are skipped."""
    tokens: dict[str, User] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) not in (2, 3) or (len(words) == 3 and words[2] != "admin"):
            raise TokenFileError(f"{path}: line {number}: expected 'TOKEN USER [admin]'")
        tokens[words[0]] = User(words[1], admin=len(words) == 3)
    return tokens


def _private_file(path: Path, make: Callable[[], str]) -> tuple[str, bool]:
    """The file's content, creating it (mode 0600) with `make()` first; True when created."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip(), False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    return value, True


class Auth:
    def __init__(self, tokens: dict[str, User], secret: bytes) -> None:
        self._tokens = tokens
        self._users = {u.name: u for u in tokens.values()}
        self._secret = secret

    @classmethod
    def load(cls, data_dir: Path, admin_token: str | None, tokens_file: Path | None) -> tuple[Auth, str | None]:
        """The Auth of a data dir, and the admin token when it was generated just now (to show once)."""
        tokens = read_tokens_file(tokens_file) if tokens_file else {}
        generated = None
        if admin_token is None and not any(u.admin for u in tokens.values()):
            admin_token, created = _private_file(data_dir / ADMIN_TOKEN_FILE, lambda: secrets.token_urlsafe(32))
            generated = admin_token if created else None
        if admin_token is not None:
            tokens[admin_token] = User(ADMIN_USER, admin=True)
        secret, _ = _private_file(data_dir / SECRET_FILE, lambda: secrets.token_hex(32))
        return cls(tokens, bytes.fromhex(secret)), generated

    def user_for_token(self, token: str) -> User | None:
        # Compare against every token, matched or not, so timing reveals nothing.
        found = None
        for known, user in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = user
        return found

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

    def session_value(self, user: User) -> str:
        name = base64.urlsafe_b64encode(user.name.encode()).decode()
        return f"{name}.{self._sign(name)}"

    def user_for_session(self, value: str) -> User | None:
        name, _, signature = value.partition(".")
        if not hmac.compare_digest(self._sign(name), signature):
            return None
        try:
            return self._users.get(base64.urlsafe_b64decode(name.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            return None

    def user_of(self, request: web.Request) -> User | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            return self.user_for_token(token.strip())
        cookie = request.cookies.get(COOKIE)
        return self.user_for_session(cookie) if cookie else None


def needs_user(request: web.Request) -> bool:
    return request.path.startswith("/api/") and request.path not in PUBLIC_PATHS


@web.middleware
async def auth_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    if request.method != "OPTIONS" and needs_user(request):
        user = request.app[AUTH].user_of(request)
        if user is None:
            raise ApiError(
                401, "unauthorized", "Send 'Authorization: Bearer TOKEN' or log in with POST /api/session.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        request[USER] = user
    return await handler(request)


def user(request: web.Request) -> User:
    return request[USER]


async def visible_job(request: web.Request, job_id: str) -> JobRecord:
    """The job when the caller may see it; otherwise the same 404 as for a missing job."""
    job = await request.app[STORE].get_job(job_id)
    caller = user(request)
    if job is None or not (caller.admin or job.owner == caller.name):
        raise not_found(f"No job with id {job_id!r}.")
    return job


async def login(request: web.Request) -> web.Response:
    """POST /api/session {"token"}: trade a token for an HttpOnly session cookie."""
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("Body must be JSON like {\"token\": \"...\"}.") from None
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise bad_request("Field 'token' must be a non-empty string.")
    auth = request.app[AUTH]
    found = auth.user_for_token(token)
    if found is None:
        raise ApiError(401, "unauthorized", "That token is not valid.")
    response = web.json_response({"user": found.name, "admin": found.admin})
    response.set_cookie(
        COOKIE, auth.session_value(found), httponly=True, samesite="Strict", path="/", secure=request.secure
    )
    return response


async def logout(_: web.Request) -> web.Response:
    response = web.json_response({"user": None})
    response.del_cookie(COOKIE, path="/")
    return response
