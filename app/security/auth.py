"""Who is calling: bearer tokens, session cookies, the first start's one-time login code.

Tokens are never logged or stored: the service keeps each one's fingerprint, an HMAC
under a secret kept in the data dir, and a session remembers the fingerprint of the
token that opened it, so replacing a token ends its sessions. Sessions themselves are
random and live in the store (app/security/sessions.py). Failed logins and unknown bearer
tokens are counted per client address (app/security/ratelimit.py) and answered 429 past the limit.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, TypeVar

from aiohttp import web

from app.security.proxy import client_address, is_https
from app.security.ratelimit import FailureLimiter
from app.security.sessions import SessionPolicy, Sessions
from app.storage.store import JobHead, JobRecord
from app.web.errors import ApiError, bad_request, not_found
from app.web.keys import AUTH, CONFIG, SESSIONS, STORE, USER
from app.web.request_body import json_body

if TYPE_CHECKING:
    from app.config import Config

log = logging.getLogger(__name__)
COOKIE = "timetabler_session"
ADMIN_USER = "admin"
ADMIN_TOKEN_FILE = "admin-token"
SECRET_FILE = "session-secret"
PUBLIC_PATHS = frozenset({"/api/session", "/api/health", "/api/openapi.json"})
# A shorter token can be guessed; generated ones have 43 characters.
MIN_TOKEN_LENGTH = 16
LOGIN_FIELDS = ("token", "code")


@dataclass(frozen=True)
class User:
    name: str
    admin: bool = False


class TokenFileError(ValueError):
    pass


def _bytes(text: str) -> bytes:
    # JSON and headers can carry lone surrogates, which plain UTF-8 refuses: never a 500 for them.
    return text.encode("utf-8", "surrogatepass")


def _too_short(token: str) -> str | None:
    if len(token) >= MIN_TOKEN_LENGTH:
        return None
    return f"is {len(token)} characters long; tokens must have at least {MIN_TOKEN_LENGTH}"


def read_tokens_file(path: Path) -> dict[str, User]:
    """`TOKEN USER [admin]` per line; blank lines and `#` comments are skipped."""
    tokens: dict[str, User] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) not in (2, 3) or (len(words) == 3 and words[2] != "admin"):
            raise TokenFileError(f"{path}: line {number}: expected 'TOKEN USER [admin]'")
        if short := _too_short(words[0]):
            raise TokenFileError(f"{path}: line {number}: the token of {words[1]} {short}")
        tokens[words[0]] = User(words[1], admin=len(words) == 3)
    return tokens


class Secrets(Protocol):
    """Where the generated admin token and the session secret are kept: the data dir (one
    instance) or Redis (every instance shares them, so a cookie from one works on another)."""

    def keep(self, name: str, make: Callable[[], str]) -> tuple[str, bool]:
        """The value named `name`, made with `make()` and kept first if there is none; True when made now."""
        ...


@dataclass(frozen=True)
class DataDirSecrets:
    data_dir: Path

    def keep(self, name: str, make: Callable[[], str]) -> tuple[str, bool]:
        return _private_file(self.data_dir / name, make)


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


@dataclass(frozen=True)
class LoginCode:
    """The first start's one-time login code: only its hash is kept, until used or expired."""

    digest: bytes
    token_fp: str  # the admin token's, so the session it opens ends with that token
    expires_at: float  # on Auth's monotonic clock


class Auth:
    def __init__(self, tokens: dict[str, User], secret: bytes, *, failures: int = 10, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._secret = secret
        # By fingerprint: a dict lookup of an HMAC the caller cannot predict reveals nothing by its timing.
        self._by_fp = {self.fingerprint(token): user for token, user in tokens.items()}
        self._clock = clock
        self._code: LoginCode | None = None
        # Logins and bearer tokens are separate doors, each with its own count per address.
        self.login_limit = FailureLimiter(failures, window, clock=clock)
        self.bearer_limit = FailureLimiter(failures, window, clock=clock)

    @classmethod
    def load(cls, kept: Secrets, admin_token: str | None, tokens_file: Path | None,
             **limits: Any) -> tuple[Auth, str | None]:
        """The Auth whose generated secrets are `kept`, and the admin token when it was generated
        just now (to show once).
        Raises ValueError (TokenFileError for the file) for a token shorter than MIN_TOKEN_LENGTH."""
        tokens = read_tokens_file(tokens_file) if tokens_file else {}
        generated = None
        if admin_token is None and not any(u.admin for u in tokens.values()):
            admin_token, created = kept.keep(ADMIN_TOKEN_FILE, lambda: secrets.token_urlsafe(32))
            generated = admin_token if created else None
        if admin_token is not None:
            if short := _too_short(admin_token):
                raise ValueError(f"the admin token (--admin-token, TIMETABLER_ADMIN_TOKEN or {ADMIN_TOKEN_FILE}) {short}")
            tokens[admin_token] = User(ADMIN_USER, admin=True)
        secret, _ = kept.keep(SECRET_FILE, lambda: secrets.token_hex(32))
        return cls(tokens, bytes.fromhex(secret), **limits), generated

    @classmethod
    def from_config(cls, config: Config) -> tuple[Auth, str | None]:
        kept: Secrets = DataDirSecrets(config.data_dir)
        if config.redis:
            from app.storage.redis_secrets import RedisSecrets  # Redis loads only when asked for

            kept = RedisSecrets(config.redis)
        return cls.load(kept, config.admin_token, config.tokens,
                        failures=config.login_failures, window=config.login_window)

    def fingerprint(self, token: str) -> str:
        return hmac.new(self._secret, _bytes(token), hashlib.sha256).hexdigest()

    @property
    def token_fps(self) -> frozenset[str]:
        return frozenset(self._by_fp)

    def user_for_token(self, token: str) -> User | None:
        return self._by_fp.get(self.fingerprint(token))

    def user_for_fingerprint(self, token_fp: str) -> User | None:
        return self._by_fp.get(token_fp)

    def issue_login_code(self, ttl: float) -> str:
        """A code that opens one admin session within `ttl` seconds (printed at first start)."""
        admin = next(fp for fp, user in self._by_fp.items() if user.admin)
        code = secrets.token_urlsafe(24)
        self._code = LoginCode(hashlib.sha256(_bytes(code)).digest(), admin, self._clock() + ttl)
        return code

    def redeem_login_code(self, code: str) -> str | None:
        """The admin token's fingerprint if `code` is the live one-time code, which it uses up."""
        pending = self._code
        if pending is None or self._clock() >= pending.expires_at:
            self._code = None
            return None
        if not hmac.compare_digest(hashlib.sha256(_bytes(code)).digest(), pending.digest):
            return None
        self._code = None
        return pending.token_fp


def needs_user(request: web.Request) -> bool:
    return request.path.startswith("/api/") and request.path not in PUBLIC_PATHS


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _refuse_if_limited(limiter: FailureLimiter, address: str, what: str) -> None:
    wait = limiter.retry_after(address)
    if wait is not None:
        raise ApiError(429, "too_many_failures", f"Too many {what} from your address; try again in {wait} s.",
                       headers={"Retry-After": str(wait)})


def _count_failure(limiter: FailureLimiter, address: str, what: str) -> None:
    if limiter.failed(address):  # one line per block, not per guess
        log.warning("client %s: %d %s within %g s; refusing its attempts for now", address, limiter.limit, what, limiter.window)


async def session_user(request: web.Request, cookie: str) -> User | None:
    """The user of a live session whose token is still configured; other sessions are ended."""
    sessions = request.app[SESSIONS]
    session = await sessions.find(cookie)
    if session is None:
        return None
    found = request.app[AUTH].user_for_fingerprint(session.token_fp)
    if found is None or found.name != session.user:  # its token was replaced or given to someone else
        await sessions.close(cookie)
        return None
    return found


async def user_of(request: web.Request) -> User | None:
    auth = request.app[AUTH]
    token = bearer_token(request)
    if token is not None:
        address = client_address(request, request.app[CONFIG].trust_proxy)
        _refuse_if_limited(auth.bearer_limit, address, "unknown bearer tokens")
        found = auth.user_for_token(token)
        if found is None:
            _count_failure(auth.bearer_limit, address, "unknown bearer tokens")
        return found
    cookie = request.cookies.get(COOKIE)
    return await session_user(request, cookie) if cookie else None


@web.middleware
async def auth_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    if request.method != "OPTIONS" and needs_user(request):
        found = await user_of(request)
        if found is None:
            raise ApiError(
                401, "unauthorized", "Send 'Authorization: Bearer TOKEN' or log in with POST /api/session.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        request[USER] = found
    return await handler(request)


def user(request: web.Request) -> User:
    return request[USER]


async def visible_job(request: web.Request, job_id: str) -> JobRecord:
    """The job when the caller may see it; otherwise the same 404 as for a missing job."""
    return _visible(request, job_id, await request.app[STORE].get_job(job_id))


async def visible_head(request: web.Request, job_id: str) -> JobHead:
    """As `visible_job`, reading only the job's owner, status and last seq (event streams)."""
    return _visible(request, job_id, await request.app[STORE].job_head(job_id))


_Job = TypeVar("_Job", JobRecord, JobHead)


def _visible(request: web.Request, job_id: str, job: _Job | None) -> _Job:
    caller = user(request)
    if job is None or not (caller.admin or job.owner == caller.name):
        raise not_found(f"No job with id {job_id!r}.")
    return job


async def _login_field(request: web.Request) -> tuple[str, str]:
    """("token" | "code", its value) from a JSON body with exactly one of them."""
    # Only JSON: a cross-site form or no-cors fetch cannot send it without a preflight.
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the login as Content-Type: application/json.")
    body = await json_body(request)
    if not isinstance(body, dict):
        raise bad_request("Body must be a JSON object like {\"token\": \"...\"}.")
    unknown = sorted(set(body) - set(LOGIN_FIELDS))
    if unknown:
        raise bad_request(f"Unknown field {unknown[0][:40]!r}: send 'token' or 'code'.")
    given = [(name, body[name]) for name in LOGIN_FIELDS if name in body]
    if len(given) != 1:
        raise bad_request("Send exactly one of 'token' and 'code'.")
    name, value = given[0]
    if not isinstance(value, str) or not value:
        raise bad_request(f"Field {name!r} must be a non-empty string.")
    return name, value


async def login(request: web.Request) -> web.Response:
    """POST /api/session {"token"} or {"code"}: open a session and hand out its HttpOnly cookie."""
    kind, value = await _login_field(request)
    auth, config = request.app[AUTH], request.app[CONFIG]
    address = client_address(request, config.trust_proxy)
    _refuse_if_limited(auth.login_limit, address, "failed logins")
    token_fp = auth.fingerprint(value) if kind == "token" else auth.redeem_login_code(value)
    found = auth.user_for_fingerprint(token_fp) if token_fp else None
    if token_fp is None or found is None:
        _count_failure(auth.login_limit, address, "failed logins")
        detail = "That token is not valid." if kind == "token" else "That login link was used already or has expired."
        raise ApiError(401, "unauthorized", detail)
    sessions = request.app[SESSIONS]
    await sessions.prune(auth.token_fps)  # logins are rare: a good moment to forget expired sessions
    cookie = await sessions.open(found.name, token_fp)
    log.info("session opened for %s from %s (by %s)", found.name, address, kind)
    response = web.json_response({"user": found.name, "admin": found.admin})
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="Strict", path="/",
                        max_age=int(sessions.policy.lifetime), secure=is_https(request, config.trust_proxy))
    return response


async def logout(request: web.Request) -> web.Response:
    """DELETE /api/session: end the session server-side, so a copy of the cookie is useless too."""
    cookie = request.cookies.get(COOKIE)
    if cookie:
        await request.app[SESSIONS].close(cookie)
    response = web.json_response({"user": None})
    response.del_cookie(COOKIE, path="/")
    return response


async def _prune_at_start(app: web.Application) -> None:
    gone = await app[SESSIONS].prune(app[AUTH].token_fps)
    if gone:
        log.info("ended %d expired or revoked sessions", gone)


def setup(app: web.Application, config: Config) -> None:
    """Sessions on the app's store; call after the store's start-up hook is registered."""
    app[SESSIONS] = Sessions(app[STORE], SessionPolicy(config.session_idle, config.session_lifetime))
    app.on_startup.append(_prune_at_start)
