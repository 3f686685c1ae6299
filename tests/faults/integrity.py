"""Checking a SQLite store file after abuse: the database and the engine's own invariants."""

from __future__ import annotations

import sqlite3
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from streamkit.server.store.base import data_hash
from streamkit.server.store.sqlite.datafiles import directory_of
from streamkit.server.store.sqlite.schema import DEAD


@dataclass
class Integrity:
    """What :func:`check_db` found; ``problems`` is empty when all is well."""

    streams: int = 0
    messages: int = 0
    """Messages of the streams that exist."""
    purging: int = 0
    """Messages of deleted streams, not yet removed by the trimmer (`retention.purge`)."""
    consumers: int = 0
    deliveries: int = 0
    problems: list[str] = field(default_factory=list)

    def assert_ok(self) -> None:
        assert not self.problems, "store integrity:\n" + "\n".join(self.problems)


_SIZES = "SELECT key, data, data_bytes FROM messages WHERE stream = ?"
_SIZES_BEFORE_DATA_FILES = "SELECT key, data, NULL FROM messages WHERE stream = ?"


def _data_file_problems(conn: sqlite3.Connection, directory: Path, crcs: bool) -> list[str]:
    problems = []
    rows = conn.execute(
        "SELECT stream, seq, data_file, data_offset, data_bytes,"
        f" {'data_crc' if crcs else 'NULL'}, data_hash, data"
        " FROM messages WHERE data_file IS NOT NULL ORDER BY data_file"
    )
    for sid, seq, file, offset, size, crc, hash_, inline in rows:
        at = f"message {sid}/{seq}"
        path = directory / f"{file}.dat"
        if inline != "":
            problems.append(f"{at}: data both inline and in {path.name}")
        if not path.is_file():
            problems.append(f"{at}: data file {path.name} is missing")
            continue
        with path.open("rb") as f:
            f.seek(offset)
            raw = f.read(size)
        if len(raw) != size:
            problems.append(f"{at}: {path.name} ends before byte {offset + size}")
        elif crc is None and data_hash(raw.decode()) != hash_:  # stored by format 4
            problems.append(f"{at}: the data in {path.name} does not match its data_hash")
        elif crc is not None and zlib.crc32(raw) != crc:
            problems.append(f"{at}: the data in {path.name} does not match its data_crc")
    return problems


def check_db(path: Path) -> Integrity:
    """``PRAGMA integrity_check`` plus the counters the engine keeps, in one read snapshot.

    - each stream's ``message_count`` and ``storage_size`` equal what its rows add up to,
      and no message has a seq above the stream's ``last_seq``;
    - each message kept in a data file finds its bytes there, and they have its
      ``data_crc`` (or, stored by format 4, hash to its ``data_hash``);
    - each consumer's ``outstanding`` (unacked, not dead) equals its delivery rows
      in those states and is never negative; its cursor is never negative (it may
      lie past ``last_seq``: a consumer may start at a seq not stored yet);
    - each consumer's ``leased`` equals the live messages of its leases, and each
      lease's ``n_live`` the live flags it holds (files from before leases have none);
    - no consumer or delivery belongs to something that is gone, and no message
      either, except a deleted stream's: the trimmer removes those after the delete
      answered, and the next server to open the file finishes what a stopped one
      left (they are counted in ``purging``, and must belong to a stream id that
      was given out).
    """
    out = Integrity()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        (verdict,) = conn.execute("PRAGMA integrity_check").fetchone()
        if verdict != "ok":
            out.problems.append(f"integrity_check: {verdict}")
        conn.execute("BEGIN")
        out.streams = conn.execute("SELECT COUNT(*) FROM streams").fetchone()[0]
        out.messages = conn.execute(
            "SELECT COUNT(*) FROM messages WHERE stream IN (SELECT sid FROM streams)"
        ).fetchone()[0]
        out.purging = conn.execute(
            "SELECT COUNT(*) FROM messages WHERE stream NOT IN (SELECT sid FROM streams)"
        ).fetchone()[0]
        out.consumers = conn.execute("SELECT COUNT(*) FROM consumers").fetchone()[0]
        out.deliveries = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        rows = conn.execute(
            "SELECT s.sid, s.name, s.message_count, s.storage_size, s.last_seq,"
            " (SELECT COUNT(*) FROM messages m WHERE m.stream = s.sid),"
            " (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.stream = s.sid)"
            " FROM streams s"
        ).fetchall()
        columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
        sizes = _SIZES if "data_bytes" in columns else _SIZES_BEFORE_DATA_FILES
        if "data_file" in columns:
            crcs = "data_crc" in columns  # not in a format-4 file yet: it hashes instead
            out.problems += _data_file_problems(conn, directory_of(path), crcs)
        for sid, name, count, size, last_seq, real_count, max_seq in rows:
            # Summed in Python: SQL's length() stops at the first NUL character.
            real_size = sum(
                len(k) + (len(d) if nbytes is None else nbytes)
                for k, d, nbytes in conn.execute(sizes, (sid,))
            )
            if count != real_count:
                out.problems.append(f"stream {name}: message_count {count} != {real_count} rows")
            if size != real_size:
                out.problems.append(f"stream {name}: storage_size {size} != {real_size}")
            if max_seq > last_seq:
                out.problems.append(f"stream {name}: seq {max_seq} past last_seq {last_seq}")
        rows = conn.execute(
            "SELECT c.name, c.outstanding, c.cursor,"
            f" (SELECT COUNT(*) FROM deliveries d WHERE d.consumer = c.cid AND d.state < {DEAD})"
            " FROM consumers c JOIN streams s ON s.sid = c.stream"
        ).fetchall()
        for name, outstanding, cursor, real in rows:
            if outstanding < 0 or outstanding != real:
                out.problems.append(f"consumer {name}: outstanding {outstanding} != {real} rows")
            if cursor < 0:
                out.problems.append(f"consumer {name}: negative cursor {cursor}")
        has_leases = conn.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'leases'"
        ).fetchone()[0]
        if has_leases:
            counted = {
                cid: (f"{stream}/{name}", leased)
                for cid, stream, name, leased in conn.execute(
                    "SELECT c.cid, s.name, c.name, c.leased FROM consumers c"
                    " JOIN streams s ON s.sid = c.stream"
                )
            }
            live_by_cid: dict[int, int] = dict.fromkeys(counted, 0)
            for cid, token, live, n_live in conn.execute(
                "SELECT consumer, token, live, n_live FROM leases"
            ):
                flags = sum(1 for b in live if b)
                if flags != n_live or n_live < 1:
                    out.problems.append(f"lease {token}: n_live {n_live} != {flags} live flags")
                live_by_cid[cid] = live_by_cid.get(cid, 0) + flags
            for cid, (name, leased) in counted.items():
                if leased != live_by_cid[cid]:
                    out.problems.append(
                        f"consumer {name}: leased {leased} != {live_by_cid[cid]} live"
                    )
            (n,) = conn.execute(
                "SELECT COUNT(*) FROM leases WHERE consumer NOT IN (SELECT cid FROM consumers)"
            ).fetchone()
            if n:
                out.problems.append(f"{n} orphaned leases")
        (n,) = conn.execute(
            "SELECT COUNT(*) FROM messages WHERE stream > COALESCE("
            "(SELECT seq FROM sqlite_sequence WHERE name = 'streams'), 0)"
        ).fetchone()
        if n:
            out.problems.append(f"{n} messages of stream ids never given out")
        orphans = {
            "consumers": "SELECT COUNT(*) FROM consumers"
            " WHERE stream NOT IN (SELECT sid FROM streams)",
            "deliveries": "SELECT COUNT(*) FROM deliveries"
            " WHERE consumer NOT IN (SELECT cid FROM consumers)",
            "latest_by_key": "SELECT COUNT(*) FROM latest_by_key l WHERE NOT EXISTS"
            " (SELECT 1 FROM messages m WHERE m.stream = l.stream AND m.seq = l.seq)",
            "negative delivery counts": "SELECT COUNT(*) FROM deliveries WHERE delivery_count < 1",
        }
        for what, sql in orphans.items():
            (n,) = conn.execute(sql).fetchone()
            if n:
                out.problems.append(f"{n} orphaned/invalid {what}")
        conn.execute("COMMIT")
    finally:
        conn.close()
    return out
