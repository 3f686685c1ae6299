"""The disk failing under SQLite (full, or I/O errors), and getting back from it.

A write that hits ``SQLITE_FULL`` or ``SQLITE_IOERR`` fails as a whole: the
writer rolls its transaction back and answers every job of it with
`StoreFull` (507 on the wire), so a batch is never stored in part. While the
store is degraded a recovery loop (`SqliteStore`) repeats two steps every
`RECOVERY_INTERVAL` seconds: `checkpoint_truncate` copies the WAL into the
database and truncates it (when the WAL holds most of the data, that is what
gives the space back), then `probe` writes one page; the first commit that
succeeds ends the fault, so the server recovers without a restart and
without waiting for a client to write.
"""

from __future__ import annotations

import errno
import sqlite3

from streamkit.server.store.base import StoreFull

RECOVERY_INTERVAL = 1.0
"""Seconds between two recovery attempts while the disk is full."""

_SQLITE_IOERR = 10
_SQLITE_FULL = 13
_OS_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EROFS})

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
    """Write one page (inside the writer's transaction): commits only when the disk takes it."""
    conn.execute("UPDATE meta SET v = v WHERE k = 'schema_version'")
