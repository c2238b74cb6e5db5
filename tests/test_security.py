"""Sessions, cross-site writes and failed-login limits, against real `serve` processes
over real sockets and a real SQLite store."""

from __future__ import annotations

import sqlite3
import ssl
import subprocess
import time
from contextlib import closing
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from aiohttp.test_utils import TestServer

from app.config import Config
from app.security.auth import COOKIE
from app.web.application import DB_FILE, create_app
from tests.app_support import ALICE_TOKEN, TOY_CTT, config
from tests.browser_support import TOKEN, Service, wait_until

EVIL = "https://evil.example"
FRIEND = "https://app.example"  # in --cors-origin
FAILURES = 3  # --login-failures of the shared service
__all__ = ["config"]  # a fixture, used by name


def _started(service: Service) -> Service:
    service.data_dir.mkdir(parents=True, exist_ok=True)
    service.start()
    return service


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Behind a pretend proxy (--trust-proxy), so each test can speak from its own client address."""
    service = _started(Service(tmp_path_factory.mktemp("security") / "data", args=(
        "--trust-proxy", "--cors-origin", FRIEND, "--login-failures", str(FAILURES), "--login-window", "600",
        "--slots", "1", "--max-active-jobs", "20", "--time-limit", "1")))
    yield service
    service.stop()


@pytest.fixture()
def own(tmp_path: Path) -> Iterator[Service]:
    service = Service(tmp_path / "data")
    yield service
    service.stop()


def call(service: Service, method: str, path: str, cookie: str | None = None, **kwargs: object) -> httpx.Response:
    headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
    if cookie is not None:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    return httpx.request(method, f"{service.url}{path}", headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


def login(service: Service, token: str = TOKEN, headers: dict[str, str] | None = None) -> httpx.Response:
    return call(service, "POST", "/api/session", json={"token": token}, headers={"Origin": service.url, **(headers or {})})


def session_of(service: Service, token: str = TOKEN) -> str:
    resp = login(service, token)
    assert resp.status_code == 200, resp.text
    return resp.cookies[COOKIE]


def assert_error(resp: httpx.Response, status: int, error: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "detail"} and body["error"] == error
    return body["detail"]


# ---------------------------------------------------------------- item 5: sessions


def test_sessions_are_random_and_logout_ends_them_on_the_server(svc: Service) -> None:
    first, second = session_of(svc), session_of(svc)
    assert first != second and len(first) >= 40 and TOKEN not in first
    assert call(svc, "GET", "/api/jobs", first).status_code == 200
    out = call(svc, "DELETE", "/api/session", first, headers={"Origin": svc.url})
    assert out.status_code == 200 and f'{COOKIE}=""' in out.headers["Set-Cookie"]
    # A copy of the cookie kept after logout (another tab, a stolen one) no longer works.
    assert_error(call(svc, "GET", "/api/jobs", first), 401, "unauthorized")
    assert call(svc, "GET", "/api/jobs", second).status_code == 200


def test_a_session_survives_a_restart_and_a_new_token_ends_it(own: Service) -> None:
    own.admin_token = "first-admin-token-0123"
    _started(own)
    cookie = session_of(own, own.admin_token)
    own.stop()
    own.start()
    assert call(own, "GET", "/api/jobs", cookie).status_code == 200  # kept in the store
    with closing(sqlite3.connect(own.data_dir / DB_FILE)) as db:
        rows = db.execute("SELECT * FROM sessions").fetchall()
    assert len(rows) == 1 and not any(cookie in str(v) or own.admin_token in str(v) for v in rows[0])

    own.stop()
    own.admin_token = "second-admin-token-0123"  # the admin replaced the token
    own.start()
    assert_error(call(own, "GET", "/api/jobs", cookie), 401, "unauthorized")
    assert call(own, "GET", "/api/jobs", session_of(own, own.admin_token)).status_code == 200

    own.stop()
    own.admin_token = "first-admin-token-0123"  # putting the old token back does not revive its sessions
    own.start()
    assert_error(call(own, "GET", "/api/jobs", cookie), 401, "unauthorized")


def test_a_session_ends_at_its_lifetime_even_while_in_use(own: Service) -> None:
    own.args = ("--session-lifetime", "2")
    _started(own)
    resp = login(own)
    opened = time.monotonic()
    cookie = resp.cookies[COOKIE]
    assert "Max-Age=2" in resp.headers["Set-Cookie"]  # the browser forgets it then too
    assert call(own, "GET", "/api/jobs", cookie).status_code == 200
    wait_until(lambda: call(own, "GET", "/api/jobs", cookie).status_code == 401, 20, "the session to end")
    assert time.monotonic() - opened > 1.0  # ended by its lifetime, not at once


def test_the_cookie_is_secure_when_a_trusted_proxy_says_the_request_came_over_https(svc: Service, own: Service) -> None:
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": svc.url.removeprefix("http://")}
    over_https = login(svc, headers={**https, "Origin": svc.url.replace("http:", "https:")})
    assert over_https.status_code == 200 and "Secure" in over_https.headers["Set-Cookie"]
    assert "Secure" not in login(svc).headers["Set-Cookie"]  # plain HTTP
    _started(own)  # without --trust-proxy the header is anyone's to send, so it counts for nothing
    untrusted = login(own, headers={"X-Forwarded-Proto": "https"})
    assert untrusted.status_code == 200 and "Secure" not in untrusted.headers["Set-Cookie"]


async def test_the_cookie_is_secure_over_tls_and_the_https_origin_is_its_own(tmp_path: Path, config: Config) -> None:
    """TLS ended in the process itself (a self-signed certificate; a real socket, the real app)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=60)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = TestServer(create_app(config))
    await server.start_server(ssl=context)
    try:
        origin = f"https://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(verify=False, base_url=origin, timeout=10) as client:
            resp = await client.post("/api/session", json={"token": ALICE_TOKEN}, headers={"Origin": origin})
            assert resp.status_code == 200 and "Secure" in resp.headers["Set-Cookie"]
            plain = origin.replace("https:", "http:")  # the same host over plain HTTP is another origin
            cross = await client.post("/api/jobs", content=TOY_CTT, headers={"Origin": plain, "Content-Type": "text/plain"})
            assert_error(cross, 403, "cross_site_request")
    finally:
        await server.close()


# ---------------------------------------------------------------- item 6: cross-site writes


def test_cross_site_writes_with_a_session_cookie_are_refused(svc: Service) -> None:
    cookie = session_of(svc)
    text = {"content": TOY_CTT, "headers": {"Content-Type": "text/plain"}}

    def write(method: str, path: str, marks: dict[str, str], **kwargs: object) -> httpx.Response:
        """A request with the session cookie and the browser's marks of where it comes from."""
        extra = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        return call(svc, method, path, cookie, headers={**extra, **marks}, **kwargs)

    mine = write("POST", "/api/jobs", {"Origin": svc.url}, **text)
    assert mine.status_code == 202, mine.text  # the page itself
    job = mine.json()["id"]
    refused = [
        write("POST", "/api/jobs", {"Origin": EVIL}, **text),
        write("POST", "/api/jobs", {"Origin": EVIL}, files={"instance": ("a.ctt", TOY_CTT.encode())}),
        write("DELETE", f"/api/jobs/{job}", {"Origin": EVIL}),
        write("POST", "/api/jobs", {"Sec-Fetch-Site": "cross-site"}, **text),  # a browser that sends no Origin
        write("POST", "/api/jobs", {"Origin": "null"}, **text),  # a sandboxed frame or a data: page
        write("POST", "/api/session", {"Origin": EVIL}, content=f'{{"token": "{TOKEN}"}}',
              headers={"Content-Type": "text/plain"}),
    ]
    for resp in refused:
        assert "cross-site" in assert_error(resp, 403, "cross_site_request")
    assert svc.api("GET", f"/api/jobs/{job}").json()["status"] in ("queued", "running", "completed")  # not cancelled

    friend = write("POST", "/api/jobs", {"Origin": FRIEND}, **text)  # an allowed CORS origin
    assert friend.status_code == 202 and friend.headers["Access-Control-Allow-Origin"] == FRIEND
    bearer = svc.api("POST", "/api/jobs", headers={"Origin": EVIL, "Content-Type": "text/plain"}, content=TOY_CTT)
    assert bearer.status_code == 202  # a bearer token is not sent by a browser on its own: unaffected
    listed = svc.api("GET", "/api/jobs?limit=100").json()["jobs"]
    assert {job, friend.json()["id"], bearer.json()["id"]} <= {j["id"] for j in listed}
    assert len(listed) == 3  # and none of the refused ones

    # The login takes JSON only, even from the page's own origin.
    as_text = call(svc, "POST", "/api/session", content=f'{{"token": "{TOKEN}"}}',
                   headers={"Origin": svc.url, "Content-Type": "text/plain"})
    assert_error(as_text, 415, "unsupported_media_type")
    for job_id in {j["id"] for j in listed}:
        svc.api("DELETE", f"/api/jobs/{job_id}")


# ---------------------------------------------------------------- item 7: brute force


def test_failed_logins_and_unknown_bearer_tokens_are_limited_per_client_address(svc: Service) -> None:
    guesser = {"X-Forwarded-For": "203.0.113.7"}
    for _ in range(FAILURES):
        assert_error(login(svc, "wrong-token-0123456789", headers=guesser), 401, "unauthorized")
    blocked = login(svc, headers=guesser)  # even the right token is not looked at now
    assert "try again in" in assert_error(blocked, 429, "too_many_failures")
    assert 1 <= int(blocked.headers["Retry-After"]) <= 600
    assert login(svc, headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 200  # per address
    assert svc.api("GET", "/api/jobs", headers=guesser).status_code == 200  # logins and bearer tokens count apart

    prober = {"X-Forwarded-For": "198.51.100.9"}
    for _ in range(FAILURES):
        resp = call(svc, "GET", "/api/jobs", headers={**prober, "Authorization": "Bearer wrong-token-0123456789"})
        assert_error(resp, 401, "unauthorized")
    limited = svc.api("GET", "/api/jobs", headers=prober)
    assert_error(limited, 429, "too_many_failures")
    assert 1 <= int(limited.headers["Retry-After"]) <= 600
    assert svc.api("GET", "/api/jobs").status_code == 200  # another address is served
