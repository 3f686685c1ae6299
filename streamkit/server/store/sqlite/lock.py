"""One server per database file: an OS lock on ``<db>.lock`` held for the store's life.

Two servers writing one file would each keep their own catalog cache and
dedupe window: a stream created on one is a 404 on the other and a retried
id is stored twice. So `SqliteStore` takes an exclusive ``flock`` on a
companion file before it opens the database, and writes its pid there for
the error a second server prints. The kernel drops the lock when the
process dies, however it dies: a lock left by a killed server never blocks
a restart. The file itself is left in place (removing it would let two
processes lock two different files of one name).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from streamkit.server.store.base import StoreUnavailable


class DatabaseLocked(StoreUnavailable):
    """Another process holds the database's lock: this server must not open it."""


def lock_path(db: Path) -> Path:
    """The lock file of database ``db``: ``<db>.lock`` beside it."""
    return db.with_name(db.name + ".lock")


class DatabaseLock:
    """An exclusive, non-blocking ``flock`` on `lock_path` (blocking calls: run in a thread)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.path = lock_path(db)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write our pid in it, or raise `DatabaseLocked` naming the owner."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_pid(fd)
            os.close(fd)
            raise DatabaseLocked(
                f"{self.db} is in use by another streamkit server (pid {owner}, lock {self.path})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "unknown"
