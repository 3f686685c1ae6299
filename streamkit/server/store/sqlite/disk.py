"""The disk failing under SQLite (full, or I/O errors), and getting back from it.

A write that hits ``SQLITE_FULL`` or ``SQLITE_IOERR`` fails as a whole: the
writer rolls its transaction back and answers every job of it with
`StoreFull` (507 on the wire), so a batch is never stored in part. While the
store is degraded a recovery loop (`SqliteStore`) repeats, every
`RECOVERY_INTERVAL` seconds: `checkpoint_truncate` copies the WAL into the
database and truncates it (when the WAL holds most of the data, that is what
gives the space back); once the filesystem has `headroom` free again,
`probe` writes one page, and when that commits the fault is over. So the
server recovers without a restart and without waiting for a client to
write, and a small write squeezed into the last free pages does not make a
full disk look healthy.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from pathlib import Path

from streamkit.server.store.base import StoreFull

RECOVERY_INTERVAL = 1.0
"""Seconds between two recovery attempts while the disk is full."""

_SQLITE_IOERR = 10
_SQLITE_FULL = 13
_OS_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EROFS})

_MIN_HEADROOM = 1 << 20
_MAX_HEADROOM = 64 << 20
_CHECKPOINT_BUSY_MS = 200
_BUSY_MS = 10_000


def disk_fault(exc: BaseException) -> str | None:
    """What went wrong, when ``exc`` is the disk failing (full, I/O error), else None."""
    if isinstance(exc, StoreFull):
        return str(exc)
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in (_SQLITE_FULL, _SQLITE_IOERR):
            return str(exc)
    if isinstance(exc, OSError) and exc.errno in _OS_ERRNOS:
        return str(exc)
    return None


def store_full(reason: str) -> StoreFull:
    """The error every job of a failed transaction gets."""
    return StoreFull(f"storage full: {reason}; writes resume once there is space")


def headroom(path: Path) -> int:
    """Free bytes the filesystem of ``path`` needs before writes count as healthy again:
    1% of its size, at least 1 MiB and at most 64 MiB."""
    stat = os.statvfs(path.parent)
    return min(max(stat.f_blocks * stat.f_frsize // 100, _MIN_HEADROOM), _MAX_HEADROOM)


def has_room(path: Path) -> bool:
    """Whether the filesystem holding ``path`` has `headroom` free (blocking: a syscall)."""
    stat = os.statvfs(path.parent)
    return stat.f_bavail * stat.f_frsize >= headroom(path)


def checkpoint_truncate(conn: sqlite3.Connection) -> bool:
    """Checkpoint the whole WAL and truncate it to zero bytes; True when it did.

    Runs on a connection outside any transaction (the reader's). The busy
    timeout is short so that reads queued behind it are not held up.
    """
    conn.execute(f"PRAGMA busy_timeout = {_CHECKPOINT_BUSY_MS}")
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error:
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    return bool(busy == 0)


def probe(conn: sqlite3.Connection) -> None:
    """Write one page (inside the writer's transaction): commits only when the disk takes it.

    The value changes every time: SQLite skips writing a row rewritten as it was.
    """
    conn.execute(
        "INSERT OR REPLACE INTO meta (k, v) VALUES ('disk_probed_at', ?)", (str(time.time()),)
    )
