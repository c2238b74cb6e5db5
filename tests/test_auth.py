"""Tokens file, admin token generation, token length, the one-time login code, the
failed-login limiter and session expiry (on a real SQLite store), with a hand-moved clock."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path
from typing import AsyncIterator

import pytest

from app.security.auth import ADMIN_TOKEN_FILE, Auth, DataDirSecrets, TokenFileError, User, read_tokens_file
from app.security.ratelimit import FailureLimiter
from app.security.sessions import SessionPolicy, Sessions, session_key
from app.storage.sqlite_store import SqliteStore

TOK_A, TOK_B = "tok-a-0123456789abc", "tok-b-0123456789abc"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_tokens_file_lines_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# who may call\n{TOK_A} alice\n\n{TOK_B} bob admin  # ops\n")
    assert read_tokens_file(path) == {TOK_A: User("alice"), TOK_B: User("bob", admin=True)}


def test_tokens_file_bad_line_names_it(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{TOK_A} alice\n{TOK_B} bob root\n")
    with pytest.raises(TokenFileError, match=r"line 2: expected 'TOKEN USER \[admin\]'"):
        read_tokens_file(path)


def test_tokens_shorter_than_16_characters_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{TOK_A} alice\nshort-token bob\n")
    with pytest.raises(TokenFileError, match=r"line 2: the token of bob is 11 characters long; tokens must have at least 16"):
        read_tokens_file(path)
    with pytest.raises(ValueError, match=r"the admin token .* is 3 characters long"):
        Auth.load(DataDirSecrets(tmp_path), "adm", None)
    assert Auth.load(DataDirSecrets(tmp_path), "a" * 16, None)[0].user_for_token("a" * 16) == User("admin", admin=True)


def test_admin_token_generated_once_private(tmp_path: Path) -> None:
    auth, generated = Auth.load(DataDirSecrets(tmp_path), None, None)
    assert generated is not None and len(generated) >= 32
    file = tmp_path / ADMIN_TOKEN_FILE
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert auth.user_for_token(generated) == User("admin", admin=True)
    again, shown = Auth.load(DataDirSecrets(tmp_path), None, None)
    assert shown is None  # only the first start prints the login URL
    assert again.user_for_token(generated) == User("admin", admin=True)


def test_configured_admin_token_writes_no_file(tmp_path: Path) -> None:
    auth, generated = Auth.load(DataDirSecrets(tmp_path), "s3cret-admin-0123", None)
    assert generated is None and not (tmp_path / ADMIN_TOKEN_FILE).exists()
    assert auth.user_for_token("s3cret-admin-0123") == User("admin", admin=True)
    assert auth.user_for_token("s3cret-admin-012") is None
    assert auth.user_for_token("") is None
    assert auth.user_for_token("\ud800") is None  # a lone surrogate (legal in JSON) is just a wrong token


def test_token_fingerprints_are_keyed_by_the_data_dirs_secret(tmp_path: Path) -> None:
    auth, _ = Auth.load(DataDirSecrets(tmp_path), TOK_A, None)
    fp = auth.fingerprint(TOK_A)
    assert TOK_A not in fp and auth.user_for_fingerprint(fp) == User("admin", admin=True)
    assert Auth.load(DataDirSecrets(tmp_path), TOK_A, None)[0].fingerprint(TOK_A) == fp  # the secret persists across restarts
    assert Auth.load(DataDirSecrets(tmp_path / "other"), TOK_A, None)[0].fingerprint(TOK_A) != fp


def test_the_login_code_opens_one_session_and_expires(tmp_path: Path) -> None:
    clock = Clock()
    auth = Auth({TOK_A: User("admin", admin=True)}, b"s" * 32, clock=clock)
    code = auth.issue_login_code(ttl=900)
    assert TOK_A not in code
    assert auth.redeem_login_code("not-the-code") is None  # a wrong guess does not burn it
    assert auth.redeem_login_code(code) == auth.fingerprint(TOK_A)
    assert auth.redeem_login_code(code) is None  # once only
    late = auth.issue_login_code(ttl=900)
    clock.now += 900
    assert auth.redeem_login_code(late) is None


def test_failure_limiter_slides_its_window_per_address() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=3, window=60, clock=clock)
    assert [limiter.failed("1.2.3.4") for _ in range(3)] == [False, False, True]  # the third uses it up
    assert limiter.retry_after("1.2.3.4") == 60 and limiter.retry_after("5.6.7.8") is None
    clock.now += 59.5
    assert limiter.retry_after("1.2.3.4") == 1  # whole seconds, never 0
    clock.now += 0.5
    assert limiter.retry_after("1.2.3.4") is None  # the oldest failure left the window
    assert FailureLimiter(limit=0).retry_after("x") is None  # 0 turns it off


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "db.sqlite3")
    await s.connect()
    yield s
    await s.close()


async def test_sessions_end_when_idle_or_old_and_use_keeps_them_alive(store: SqliteStore) -> None:
    clock = Clock()
    sessions = Sessions(store, SessionPolicy(idle=100, lifetime=1000), clock=clock)
    idle = await sessions.open("alice", "fp")
    used = await sessions.open("alice", "fp")
    assert idle != used and len(used) >= 40
    for _ in range(9):  # 90 s steps: each within the idle limit, 810 s in all
        clock.now += 90
        assert await sessions.find(used) is not None
    assert await sessions.find(idle) is None  # not seen for 810 s > 100 s
    clock.now += 190  # 1000 s after login: used or not, it ends
    assert await sessions.find(used) is None
    assert await store.get_session(session_key(used)) is None  # and is gone from the store


async def test_pruning_forgets_expired_sessions_and_those_of_replaced_tokens(store: SqliteStore) -> None:
    clock = Clock()
    sessions = Sessions(store, SessionPolicy(idle=100, lifetime=1000), clock=clock)
    stale = await sessions.open("alice", "fp-a")
    clock.now += 50
    kept = await sessions.open("alice", "fp-a")
    await sessions.open("bob", "fp-old")
    clock.now += 60
    assert await sessions.prune(frozenset({"fp-a"})) == 2  # stale went idle; bob's token is gone
    assert await sessions.find(kept) is not None and await sessions.find(stale) is None


class FullDisk(SqliteStore):
    """The real store, but every session write fails as on a full disk."""

    async def touch_session(self, key: str, seen_at: float) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    async def delete_session(self, key: str) -> None:
        raise sqlite3.OperationalError("database or disk is full")


async def test_a_store_that_cannot_refresh_a_session_still_answers(tmp_path: Path) -> None:
    store = FullDisk(tmp_path / "db.sqlite3")
    await store.connect()
    try:
        clock = Clock()
        sessions = Sessions(store, SessionPolicy(idle=100, lifetime=1000), clock=clock)
        cookie = await sessions.open("alice", "fp")
        clock.now += 50  # a refresh is due, and fails
        assert (await sessions.find(cookie)).user == "alice"
        clock.now += 100  # idle by its stored time: over, though it cannot be deleted yet
        assert await sessions.find(cookie) is None
    finally:
        await store.close()
