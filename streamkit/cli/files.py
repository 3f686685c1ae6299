"""The commands that work on a database file, not through a server: ``streamkit
compact`` (the server stopped) and ``streamkit backup`` (while it runs).

They need neither a server nor rich; the SQLite engine's modules are loaded
only when one of them runs.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path


def compact(argv: list[str]) -> int:
    """``streamkit compact --db PATH``: give free pages back; 0 done, 1 missing, in use
    (a server runs on it) or not a database."""
    from streamkit.server.serve import DEFAULT_DB
    from streamkit.server.store.sqlite.compaction import DatabaseInUse
    from streamkit.server.store.sqlite.compaction import compact as compact_file

    parser = argparse.ArgumentParser(
        prog="streamkit compact",
        description="Shrink a SQLite database to its live pages (server stopped).",
    )
    parser.add_argument(
        "--db", type=Path, default=Path(DEFAULT_DB), help="database file (%(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        done = compact_file(args.db)
    except (DatabaseInUse, FileNotFoundError, sqlite3.Error) as exc:
        print(f"streamkit compact: error: {exc}", file=sys.stderr)
        return 1
    how = "rewrote the file (now incremental auto-vacuum)" if done.rewrote else "freed pages"
    print(f"{args.db}: {done.before:,} -> {done.after:,} bytes ({how})")
    return 0


def backup(db: str, out: str, *, pages: int) -> int:
    """``streamkit backup --db PATH OUT``: a consistent copy of a live database; 0 done,
    1 it could not be made (the reason on one line)."""
    from streamkit.server.store.sqlite.backup import BackupError
    from streamkit.server.store.sqlite.backup import backup as backup_file

    try:
        done = backup_file(Path(db), Path(out), pages=pages)
    except BackupError as exc:
        print(f"streamkit: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"backed up {db} to {done.path}: {done.pages:,} pages, "
        f"{done.bytes / 2**20:.1f} MiB in {done.seconds:.2f}s"
    )
    return 0
