"""One data dir, one service: `serve` holds an exclusive lock on a file in its data dir
for as long as it runs. Two services on one database would each run the other's
interrupted jobs again at start-up and race on every write."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TextIO

LOCK_FILE = "serve.lock"


class DataDirInUse(Exception):
    """Another process holds the data dir's lock."""


def lock_data_dir(data_dir: Path) -> TextIO:
    """Take the lock, or raise DataDirInUse naming the holder. Keep the returned file open
    while serving: the kernel drops the lock when the process ends, however it ends."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    handle = open(path, "a+", encoding="utf-8")  # not truncated before the lock is ours
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise DataDirInUse(
            f"the data dir {data_dir} is in use by another timetabler serve{who}; "
            "one data dir serves one service: stop that one or give this one its own --data-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
