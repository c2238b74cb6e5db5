"""What a failed SQLite write means for the service, in words: the disk is full, the
database is locked, or an I/O error."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from app.storage.store import DISK_FULL, LOCKED, UNWRITABLE, StoreUnavailable

_FULL, _BUSY, _LOCKED, _IOERR = 13, 5, 6, 10  # SQLite's primary result codes
# An I/O error on a disk with less than this free is a full disk that SQLite met as a
# failed write() rather than as SQLITE_FULL.
NEARLY_FULL = 64 * 1024


def _free_bytes(directory: Path) -> int | None:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def unavailable(err: sqlite3.OperationalError, directory: Path) -> StoreUnavailable:
    code = getattr(err, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    free = _free_bytes(directory)
    if primary == _FULL or (primary == _IOERR and free is not None and free < NEARLY_FULL):
        return StoreUnavailable(DISK_FULL, f"the disk holding the database is full ({err}).")
    if primary in (_BUSY, _LOCKED):
        return StoreUnavailable(LOCKED, f"the database is locked by another process ({err}).")
    return StoreUnavailable(UNWRITABLE, f"the database cannot be written ({err}).")
