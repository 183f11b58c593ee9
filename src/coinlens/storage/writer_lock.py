"""One bulk writer at a time on a SQLite database: an advisory lock on a file beside it.

`coinlens up` (while it loads and computes), `load`, `pipeline` and `import` hold it while
they write (not `sync` or the live scheduler: their writes are short). SQLite lets one
transaction write at a time and makes the others wait at most its busy timeout (10 s):
two loads or pipelines on one data dir failed with 'database is locked' part-way (a first
load's grades hold the write lock for seconds, minutes at scale) and repeated each other's
work. With the lock the second waits, says for whom, and then finds the work done.

The lock is `flock` on `<database>.lock`: the kernel releases it when its holder exits,
however it exits (SIGKILL included), so it never goes stale. The file names the holder
(pid, command, since when) for the one who waits. PostgreSQL deployments coordinate their
writers through Celery (docs/deploy.md): there the lock is a no-op.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from coinlens.domain.errors import ConfigError
from coinlens.storage.db import sqlite_path


def lock_path(database_url: str) -> Path | None:
    """The lock file of a SQLite database (None: another database, nothing to lock)."""
    path = sqlite_path(database_url)
    return None if path is None else path.with_name(path.name + ".lock")


@contextmanager
def writer_lock(
    database_url: str, what: str, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the database's writer lock inside the block; wait for it when another process
    holds it, calling `on_wait(holder)` once first (holder: 'pid 123 (coinlens load, since
    …)'). Interrupting the wait (Ctrl-C) raises KeyboardInterrupt as usual."""
    path = lock_path(database_url)
    if path is None:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot create the lock file {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
            if on_wait is not None:
                on_wait(holder or "another process")
            fcntl.flock(fd, fcntl.LOCK_EX)
        since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({what}, since {since})\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
