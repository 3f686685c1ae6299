"""SQLite schema, pragmas and connection setup for the default engine.

Layout, and why:

- ``messages`` is WITHOUT ROWID keyed by ``(stream, seq)``: a stream is one
  contiguous B-tree range, appends go to its end, and there is no second
  index on the hot insert path.
- Pages are 16 KiB (new databases; an existing file keeps its page size). A
  WITHOUT ROWID table keeps whole rows in its B-tree, interior pages included:
  with 4 KiB pages a row of a few hundred bytes or more splits pages and
  spills into overflow pages, and storing 1 KB events costs about five times
  as much as with 16 KiB pages (100-byte events cost the same either way).
- ``deliveries`` holds only messages a consumer has been handed and not yet
  acked (plus dead letters); new messages are found through the consumer's
  ``cursor``. So its size is bounded by ``max_ack_pending`` + dead letters,
  and it has no secondary index: the writer keeps a per-consumer lower bound
  of the next due time and only scans a consumer's rows when one can be due.
- ``leases`` holds, one row per receive, the messages it delivered for the
  first time (``leases.py``): an in-order consumer writes one row per batch on
  receive and deletes it on ack, instead of a ``deliveries`` row per message.
  The consumer's ``leased`` counts their unacked messages.
- There is no index on time: a read or a consumer that starts at a time finds
  its first seq by a binary search over seq (``updated_at`` grows with seq), a
  few dozen seeks, where an index cost every insert a second B-tree write
  (about a fifth of storing a 100-byte event). Files that have the index
  (``messages_by_time``, from an earlier release) drop it when opened.
- Data of 4096 characters or more lives in data files beside the database
  (``datafiles.py``): its row has ``data = ''`` and says where the data is
  (``data_file``, ``data_offset``, ``data_bytes``) and the CRC-32 its bytes there
  have (``data_crc``), which every read of them checks; the partial index
  ``messages_by_data_file`` holds those rows only.
- ``data_hash`` is ``''``: a read that sends it computes it. Hashing every message
  as it was stored cost about a fifth of the server's time per 100-byte event,
  for a field only Sequin-shaped reads send; and it made each 100-byte event
  take 223 bytes of disk instead of 173. Rows stored by formats 3 and 4 may
  still have one (4 kept it for data in data files, as their checksum), and a
  read sends what is stored. For a 64 KB message, SHA-256 took 37 µs, zlib's CRC-32
  11 to 15, and zlib-ng's 0.6 (`crc`).
- ``latest_by_key`` exists only for ``one_message_per_key`` streams.
- ids are AUTOINCREMENT so a deleted stream's or consumer's number is never
  reused (in-memory state keyed by it can never alias a new one).
- New files use ``auto_vacuum = INCREMENTAL``: pages retention frees go to the
  freelist and are reused by later writes (the file stops growing), and
  ``PRAGMA incremental_vacuum`` (``streamkit compact``) can hand them back to
  the filesystem without rewriting the file. Older files keep their mode;
  ``streamkit compact`` converts them with one VACUUM.
- ``journal_size_limit`` truncates the WAL back to `WAL_SIZE_LIMIT` whenever
  it restarts after a checkpoint, so one burst does not leave a large WAL behind.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

from streamkit.protocol.keys import matches
from streamkit.server.store.sqlite import datafiles

Synchronous = Literal["normal", "full"]

SCHEMA_VERSION = "5"
"""The file format. "2" added ``leases``: a server of format "1" must refuse such a
file, as it would never redeliver the messages a lease holds. "3" keeps large data
in data files (``datafiles.py``), which a server of format "2" would read as empty.
"4" keeps ``data_hash`` for data in data files only, which a server of format "3"
would send as empty. "5" keeps none at all (a CRC-32, ``data_crc``, checks data in
data files), which a server of format "4" would send as empty for such data."""
UPGRADED_VERSIONS = ("1", "2", "3", "4")
"""Formats this server brings up to `SCHEMA_VERSION` when it opens them."""
PAGE_SIZE = 16 * 1024
"""Bytes per page of a new database file (see the module docstring)."""
WAL_SIZE_LIMIT = 8 * 1024 * 1024
"""Bytes of WAL at which the writer checkpoints (``wal_autocheckpoint``, see
``checkpoint.py``), and that the WAL is truncated back to when it restarts
(``journal_size_limit``)."""

DDL = """
CREATE TABLE IF NOT EXISTS meta (
    k TEXT PRIMARY KEY,
    v TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS streams (
    sid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    one_message_per_key INTEGER NOT NULL,
    process_unmodified INTEGER NOT NULL,
    max_storage_gb INTEGER,
    retain_up_to INTEGER,
    retain_at_least INTEGER,
    max_bytes INTEGER,
    max_age_ms INTEGER,
    last_seq INTEGER NOT NULL DEFAULT 0,
    message_count INTEGER NOT NULL DEFAULT 0,
    storage_size INTEGER NOT NULL DEFAULT 0,
    inserted_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    stream INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    data_hash TEXT NOT NULL,
    msg_id TEXT,
    headers TEXT,
    encoding TEXT,
    inserted_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    data_file INTEGER,
    data_offset INTEGER,
    data_bytes INTEGER,
    data_crc INTEGER,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latest_by_key (
    stream INTEGER NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (stream, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consumers (
    cid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    stream INTEGER NOT NULL,
    name TEXT NOT NULL,
    filter_key_pattern TEXT NOT NULL,
    ack_wait_ms INTEGER NOT NULL,
    max_ack_pending INTEGER NOT NULL,
    max_deliver INTEGER,
    ephemeral INTEGER NOT NULL,
    inactive_threshold_ms INTEGER,
    cursor INTEGER NOT NULL,
    outstanding INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    leased INTEGER NOT NULL DEFAULT 0,
    inserted_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (stream, name)
);
-- state: 0 in flight (due = ack deadline), 1 waiting for redelivery (due = not before),
-- 2 dead-lettered.
CREATE TABLE IF NOT EXISTS deliveries (
    consumer INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    state INTEGER NOT NULL,
    token TEXT,
    due INTEGER NOT NULL,
    delivery_count INTEGER NOT NULL,
    PRIMARY KEY (consumer, seq)
) WITHOUT ROWID;
-- One row per receive's first deliveries (see leases.py): live is one byte per message,
-- seqs NULL when they run first_seq, first_seq + 1, ...
CREATE TABLE IF NOT EXISTS leases (
    consumer INTEGER NOT NULL,
    token TEXT NOT NULL,
    due INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    seqs BLOB,
    live BLOB NOT NULL,
    n_live INTEGER NOT NULL,
    PRIMARY KEY (consumer, token)
) WITHOUT ROWID;
"""

IN_FLIGHT, WAITING, DEAD = 0, 1, 2

ADDED_COLUMNS = (
    ("streams", "max_bytes", "INTEGER"),
    ("streams", "max_age_ms", "INTEGER"),
    ("consumers", "skipped", "INTEGER NOT NULL DEFAULT 0"),
    ("deliveries", "last_error", "TEXT"),
    ("consumers", "leased", "INTEGER NOT NULL DEFAULT 0"),
    ("messages", "data_file", "INTEGER"),
    ("messages", "data_offset", "INTEGER"),
    ("messages", "data_bytes", "INTEGER"),
    ("messages", "data_crc", "INTEGER"),
)
"""Columns added after schema version 1 shipped: files created before get them at open."""

ADDED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS messages_by_data_file ON messages (data_file)"
    " WHERE data_file IS NOT NULL",
)
"""Indexes created after the columns above (only rows with data in a data file have
an entry: `datafiles.DataFiles.collect` asks whether a file is still referred to)."""

DROPPED_INDEXES = ("messages_by_time",)
"""Indexes files of an earlier release have and this one does not keep up: dropped at open."""


def wal_of(database: Path) -> Path:
    """The write-ahead log file of ``database``."""
    return database.with_name(database.name + "-wal")


def connect(
    path: Path,
    synchronous: Synchronous,
    *,
    readonly: bool = False,
    autocheckpoint_bytes: int | None = None,
) -> sqlite3.Connection:
    """Open a connection in autocommit mode (transactions are explicit) with our pragmas.

    ``autocheckpoint_bytes`` sets the WAL size at which a commit of this connection
    checkpoints (SQLite's default is 1000 pages), in whole pages of the file.
    """
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=True, factory=datafiles.Connection
    )
    conn.data_directory = datafiles.directory_of(path)
    conn.execute("PRAGMA busy_timeout = 10000")
    if not readonly:
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            # Only a new, empty file takes these; on an existing one the auto_vacuum
            # pragma is a write, which must not stop a server starting on a full disk.
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    if autocheckpoint_bytes is not None:
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        pages = max(1, autocheckpoint_bytes // page_size)
        conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
    conn.execute("PRAGMA temp_store = MEMORY")
    # Debian's SQLite is built with secure_delete on: every deleted row and freed page
    # is overwritten with zeros, which doubles the I/O of retention, purges and acks.
    # FAST zeroes deleted content only where that costs no extra I/O.
    conn.execute("PRAGMA secure_delete = FAST")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    conn.create_function("sk_match", 2, matches, deterministic=True)
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    """Create tables if missing (runs inside the writer's transaction)."""
    for statement in DDL.split(";"):
        if statement.strip():
            conn.execute(statement)
    row = conn.execute("SELECT v FROM meta WHERE k = 'schema_version'").fetchone()
    if row is None:
        conn.execute("INSERT INTO meta (k, v) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
    elif row[0] in UPGRADED_VERSIONS:
        conn.execute("UPDATE meta SET v = ? WHERE k = 'schema_version'", (SCHEMA_VERSION,))
    elif row[0] != SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"the database has schema version {row[0]!r}, this server knows"
            f" {SCHEMA_VERSION!r}: it was written by a newer streamkit"
        )
    for table, column, decl in ADDED_COLUMNS:
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    for statement in ADDED_INDEXES:
        conn.execute(statement)
    for index in DROPPED_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {index}")


def key_filter_sql(pattern: str | None, column: str = "key") -> tuple[str, tuple[str, ...]]:
    """An ``AND ...`` clause restricting ``column`` to keys matching a NATS-style filter.

    Literal filters compare directly and ``prefix.>`` becomes a GLOB (key tokens
    never contain GLOB metacharacters); anything else calls ``sk_match``.
    """
    if pattern is None or pattern == ">":
        return "", ()
    tokens = pattern.split(".")
    if "*" not in tokens and ">" not in tokens:
        return f" AND {column} = ?", (pattern,)
    if tokens[-1] == ">" and "*" not in tokens:
        return f" AND {column} GLOB ?", (".".join(tokens[:-1]) + ".*",)
    return f" AND sk_match(?, {column})", (pattern,)
