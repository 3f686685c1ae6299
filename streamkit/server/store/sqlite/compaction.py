"""Giving a database's free pages back to the filesystem (``streamkit compact``), offline.

Retention frees pages inside the file and later writes reuse them, so the
file stops growing but does not shrink. Compaction shrinks it: a file created
with ``auto_vacuum = INCREMENTAL`` (every new one) runs ``PRAGMA
incremental_vacuum``, which moves no live data; an older file is converted by
one ``VACUUM`` (a full rewrite, needing as much free disk again). The WAL is
checkpointed and truncated last.

It refuses to run while another process has the file open: it takes SQLite's
exclusive lock first, which fails (at once, no waiting) while a server holds
its connections, and keeps it until done so no server can start meanwhile.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from streamkit.server.store.sqlite.schema import wal_of

_INCREMENTAL = 2
"""``PRAGMA auto_vacuum`` value of INCREMENTAL mode."""


class DatabaseInUse(Exception):
    """Another process (a running server) has the database open."""


@dataclass(frozen=True)
class Compacted:
    """Sizes (database file + WAL, bytes) before and after, and what was done."""

    before: int
    after: int
    rewrote: bool
    """True when the file was converted to incremental auto-vacuum by a full VACUUM."""


def on_disk(path: Path) -> int:
    """Bytes the database takes: the file and its WAL."""
    return sum(p.stat().st_size for p in (path, wal_of(path)) if p.exists())


def compact(path: Path) -> Compacted:
    """Shrink the database at ``path`` to its live pages; `DatabaseInUse` if it is open."""
    if not path.is_file():
        raise FileNotFoundError(f"no database at {path}")
    before = on_disk(path)
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        try:
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise DatabaseInUse(
                f"{path} is in use by another process (stop the server first): {exc}"
            ) from None
        (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
        rewrote = mode != _INCREMENTAL
        if rewrote:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("VACUUM")
        else:
            # executescript steps the pragma to the end; execute() would free one page.
            conn.executescript("PRAGMA incremental_vacuum;")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    return Compacted(before=before, after=on_disk(path), rewrote=rewrote)
