"""Tokens file, admin token generation, session signing, constant-time lookup."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.auth import ADMIN_TOKEN_FILE, Auth, TokenFileError, User, read_tokens_file


def test_tokens_file_lines_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# who may call\ntok-a alice\n\ntok-b bob admin  # ops\n")
    assert read_tokens_file(path) == {"tok-a": User("alice"), "tok-b": User("bob", admin=True)}


def test_tokens_file_bad_line_names_it(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("tok-a alice\ntok-b bob root\n")
    with pytest.raises(TokenFileError, match=r"line 2: expected 'TOKEN USER \[admin\]'"):
        read_tokens_file(path)


def test_admin_token_generated_once_private(tmp_path: Path) -> None:
    auth, generated = Auth.load(tmp_path, None, None)
    assert generated is not None and len(generated) >= 32
    file = tmp_path / ADMIN_TOKEN_FILE
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert auth.user_for_token(generated) == User("admin", admin=True)
    again, shown = Auth.load(tmp_path, None, None)
    assert shown is None  # only the first start prints the login URL
    assert again.user_for_token(generated) == User("admin", admin=True)


def test_configured_admin_token_writes_no_file(tmp_path: Path) -> None:
    auth, generated = Auth.load(tmp_path, "s3cret-admin", None)
    assert generated is None and not (tmp_path / ADMIN_TOKEN_FILE).exists()
    assert auth.user_for_token("s3cret-admin") == User("admin", admin=True)
    assert auth.user_for_token("s3cret-admiN") is None
    assert auth.user_for_token("") is None


def test_session_value_round_trip_and_tamper(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("tok-a alice\ntok-b bob\n")
    auth, _ = Auth.load(tmp_path, "adm", tokens)
    value = auth.session_value(User("alice"))
    assert auth.user_for_session(value) == User("alice")
    forged = auth.session_value(User("alice")).replace(value.split(".")[0], auth.session_value(User("bob")).split(".")[0])
    assert auth.user_for_session(forged) is None
    assert auth.user_for_session("garbage") is None
    # Another data dir has another secret: its cookies mean nothing here.
    other, _ = Auth.load(tmp_path / "other", "adm", tokens)
    assert other.user_for_session(value) is None
    # The secret persists, so sessions survive a restart.
    assert Auth.load(tmp_path, "adm", tokens)[0].user_for_session(value) == User("alice")
