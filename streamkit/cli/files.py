"""The commands that work on a stopped server's database file: ``streamkit compact``.

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
