"""``streamkit backup``: a consistent copy of a database, taken while the server runs.

SQLite's online backup API copies the database page by page. The source
connection first opens a read transaction, and the copy runs inside it: it
is the database as it was at that instant (every write committed before,
nothing after), however long the copy takes. In WAL mode a reader never
blocks the writer, and the copy goes `DEFAULT_PAGES` pages at a time with a
short sleep between steps, so a running server keeps its disk and CPU.

The copy is written to ``OUT.partial``, checked (``PRAGMA quick_check``),
switched to a rollback journal (one self-contained file, no ``-wal``), synced
and then renamed to ``OUT``: an interrupted backup never leaves a file that
looks complete.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PAGES = 256
"""Pages copied per step (4 MiB with the engine's 16 KiB pages)."""

DEFAULT_SLEEP = 0.005
"""Seconds between two steps, so the server's own I/O goes first."""

_BUSY_MS = 10_000


class BackupError(Exception):
    """The backup could not be taken; nothing was left at the output path."""


@dataclass(frozen=True)
class Backup:
    """A finished backup: where it is, its pages and bytes, and how long it took."""

    path: Path
    pages: int
    bytes: int
    seconds: float


def backup(
    db: Path,
    out: Path,
    *,
    pages: int = DEFAULT_PAGES,
    sleep: float = DEFAULT_SLEEP,
    progress: Callable[[int, int], None] | None = None,
) -> Backup:
    """Copy database ``db`` to ``out`` consistently (blocking; see the module).

    ``progress(copied, total)`` is called after each step. Raises `BackupError`.
    """
    if not db.is_file():
        raise BackupError(f"{db}: no such database file")
    if out.exists() and out.resolve() == db.resolve():
        raise BackupError(f"{out}: the backup cannot overwrite its own database")
    partial = out.with_name(out.name + ".partial")
    started = time.monotonic()
    try:
        partial.unlink(missing_ok=True)
        total = _copy(db, partial, pages, sleep, progress)
        _sync(partial)
        os.replace(partial, out)
        _sync(out.parent)
    except (sqlite3.Error, OSError, BackupError) as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        if isinstance(exc, BackupError):
            raise
        raise BackupError(f"backup of {db} failed: {exc}") from exc
    return Backup(out, total, out.stat().st_size, time.monotonic() - started)


def _copy(
    db: Path,
    dest: Path,
    pages: int,
    sleep: float,
    progress: Callable[[int, int], None] | None,
) -> int:
    source = sqlite3.connect(db, isolation_level=None)
    try:
        source.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        source.execute("PRAGMA query_only = ON")
        source.execute("BEGIN")  # the snapshot: held until the copy is done
        (total,) = source.execute("PRAGMA page_count").fetchone()
        target = sqlite3.connect(dest, isolation_level=None)
        try:

            def step(_status: int, remaining: int, count: int) -> None:
                if progress is not None:
                    progress(count - remaining, count)

            source.backup(target, pages=pages, sleep=sleep, progress=step)
            source.execute("COMMIT")
            target.execute("PRAGMA journal_mode = DELETE")
            (check,) = target.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise BackupError(f"the copy of {db} does not check out: {check}")
        finally:
            target.close()
    finally:
        source.close()
    return int(total)


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
