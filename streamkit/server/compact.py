"""``streamkit compact --db PATH``: give a stopped server's free disk pages back.

See `streamkit.server.store.sqlite.compaction`. Exit codes: 0 done, 1 the
file is missing, in use (a server runs on it) or not a database.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from streamkit.server.serve import DEFAULT_DB
from streamkit.server.store.sqlite.compaction import DatabaseInUse, compact


def main(argv: list[str] | None = None, *, prog: str = "streamkit compact") -> int:
    """Parse ``--db``, compact it, print one line; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Shrink a SQLite database to its live pages (server stopped)."
    )
    parser.add_argument(
        "--db", type=Path, default=Path(DEFAULT_DB), help="database file (%(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        done = compact(args.db)
    except (DatabaseInUse, FileNotFoundError, sqlite3.Error) as exc:
        print(f"streamkit compact: error: {exc}", file=sys.stderr)
        return 1
    how = "rewrote the file (now incremental auto-vacuum)" if done.rewrote else "freed pages"
    print(f"{args.db}: {done.before:,} -> {done.after:,} bytes ({how})")
    return 0
