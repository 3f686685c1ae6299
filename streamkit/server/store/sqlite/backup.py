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

Large messages' data lives in data files (``datafiles.py``). The files the
snapshot refers to are opened as soon as it is taken (so the server deleting
one later cannot take it from the backup), copied to ``OUT.partial-data`` and
renamed to ``OUT-data`` just before ``OUT`` appears. Restoring means copying
both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streamkit.server.store.sqlite.datafiles import directory_of, fsync_path

DEFAULT_PAGES = 256
"""Pages copied per step (4 MiB with the engine's 16 KiB pages)."""

DEFAULT_SLEEP = 0.005
"""Seconds between two steps, so the server's own I/O goes first."""

_BUSY_MS = 10_000
_CHUNK = 1 << 20


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
        _remove(partial)
        total, data_bytes = _copy(db, partial, pages, sleep, progress)
        fsync_path(partial)
        _remove(out)  # never an old OUT beside the new OUT-data
        if directory_of(partial).exists():
            os.replace(directory_of(partial), directory_of(out))
        os.replace(partial, out)
        fsync_path(out.parent)
    except (sqlite3.Error, OSError, BackupError) as exc:
        with contextlib.suppress(OSError):
            _remove(partial)
        if isinstance(exc, BackupError):
            raise
        raise BackupError(f"backup of {db} failed: {exc}") from exc
    seconds = time.monotonic() - started
    return Backup(out, total, out.stat().st_size + data_bytes, seconds)


def _remove(db: Path) -> None:
    """Delete database file ``db`` and its data files, if there are any."""
    db.unlink(missing_ok=True)
    shutil.rmtree(directory_of(db), ignore_errors=True)


def _copy(
    db: Path,
    dest: Path,
    pages: int,
    sleep: float,
    progress: Callable[[int, int], None] | None,
) -> tuple[int, int]:
    """Copy ``db`` to ``dest``: its pages, and the data files they refer to (bytes)."""
    source = sqlite3.connect(db, isolation_level=None)
    data_fds: dict[int, int] = {}
    try:
        source.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        source.execute("PRAGMA query_only = ON")
        source.execute("BEGIN")  # the snapshot: held until the copy is done
        (total,) = source.execute("PRAGMA page_count").fetchone()
        for file in _data_files(source):
            data_fds[file] = os.open(directory_of(db) / f"{file}.dat", os.O_RDONLY)
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
        data_bytes = _copy_data_files(data_fds, directory_of(dest))
    finally:
        source.close()
        for fd in data_fds.values():
            os.close(fd)
    return int(total), data_bytes


def _data_files(conn: sqlite3.Connection) -> list[int]:
    """The data files the snapshot's messages refer to (none before schema 3)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    if "data_file" not in columns:
        return []
    rows = conn.execute(
        "SELECT DISTINCT data_file FROM messages WHERE data_file IS NOT NULL"
    ).fetchall()
    return [int(file) for (file,) in rows]


def _copy_data_files(fds: dict[int, int], into: Path) -> int:
    """Copy the open data files ``fds`` into directory ``into``, synced; their bytes."""
    if not fds:
        return 0
    into.mkdir()
    copied = 0
    for file, fd in fds.items():
        # The open descriptor, not the path: the server may have deleted the file since.
        with open(fd, "rb", closefd=False) as source, open(into / f"{file}.dat", "wb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
            copied += out.tell()
    fsync_path(into)
    return copied
