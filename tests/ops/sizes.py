"""What a SQLite database takes on disk, for the tests that bound it."""

from __future__ import annotations

from pathlib import Path

MIB = 1024 * 1024


def wal_size(db: Path) -> int:
    """Bytes in ``db``'s WAL (0 when there is none)."""
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def db_size(db: Path) -> int:
    """Bytes in the database file itself."""
    return db.stat().st_size if db.exists() else 0
