"""Retention: trimming a stream's oldest messages in bounded steps (writer thread only).

A step deletes at most ``budget`` messages, oldest first, while the stream's
limits (`StreamOptions`) say they are no longer kept. Publishes trim
inline with a budget the size of what they stored, so a stream at its limit
stays there at the cost of its own writes; `SqliteStore`'s trimmer task runs
steps of `TRIM_BATCH` for what remains (a limit lowered by ``PATCH``,
messages aging out of an idle stream), one writer job at a time so publishes
interleave with them and no delete ever holds the writer for long.

What a step deletes is a prefix of the stream, so it is one range delete.
Consumers behind it move to the first retained message, in-flight and waiting
deliveries of trimmed messages vanish (acking them is ignored like any
unknown id), and each consumer counts, in ``skipped``, the messages it had
not acked that went: never delivered ones matching its filter, and the
vanished deliveries. Dead letters of trimmed messages go too, uncounted (they
were already given up on). Freed pages go to SQLite's freelist and are reused.

A deleted stream's messages go the same way: deleting a stream removes its
catalog row, consumers and deliveries at once, and `purge` steps remove its
messages afterwards (a stream id is never reused, so what is left of one
aliases nothing). Deleting a stream of 200,000 messages in one transaction
held every other write up for 100 to 220 ms, and longer streams for longer.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from streamkit.protocol.keys import matches
from streamkit.server.store.base import StreamOptions
from streamkit.server.store.sqlite import leases
from streamkit.server.store.sqlite.datafiles import stored_size
from streamkit.server.store.sqlite.schema import DEAD

TRIM_BATCH = 2_000
"""Most messages one background trim step deletes."""

INLINE_SLACK = 64
"""What a publish may trim beyond the count it stored, so a small lag is caught up."""

HAS_LIMITS = (
    "(retain_up_to IS NOT NULL OR max_storage_gb IS NOT NULL OR max_bytes IS NOT NULL"
    " OR max_age_ms IS NOT NULL)"
)
"""SQL condition on ``streams``: some limit can trim the stream."""


@dataclass(frozen=True)
class TrimResult:
    """What one step deleted, and whether the limits still want more gone."""

    removed: int
    more: bool


def deleted_streams(conn: sqlite3.Connection) -> list[int]:
    """The ids of deleted streams some of whose messages are still stored."""
    live = {sid for (sid,) in conn.execute("SELECT sid FROM streams")}
    deleted, sid = [], -1
    # One seek per stream stored: `messages` is keyed by (stream, seq).
    while row := conn.execute(
        "SELECT stream FROM messages WHERE stream > ? ORDER BY stream LIMIT 1", (sid,)
    ).fetchone():
        (sid,) = row
        if sid not in live:
            deleted.append(sid)
    return deleted


def purge(conn: sqlite3.Connection, sid: int, budget: int) -> int:
    """Delete up to ``budget`` messages of deleted stream ``sid``; how many went."""
    if conn.execute("SELECT 1 FROM streams WHERE sid = ?", (sid,)).fetchone():
        raise ValueError(f"stream {sid} is not deleted")
    return conn.execute(
        "DELETE FROM messages WHERE stream = ?1 AND seq IN"
        " (SELECT seq FROM messages WHERE stream = ?1 ORDER BY seq LIMIT ?2)",
        (sid, budget),
    ).rowcount


def streams_with_limits(conn: sqlite3.Connection) -> list[int]:
    """The sids of the streams some limit can trim."""
    return [r[0] for r in conn.execute(f"SELECT sid FROM streams WHERE {HAS_LIMITS}")]


def trim(conn: sqlite3.Connection, sid: int, budget: int, now_us: int) -> TrimResult:
    """Delete up to ``budget`` of the stream's oldest messages its limits do not keep."""
    row = conn.execute(
        "SELECT message_count, storage_size, one_message_per_key, retain_up_to,"
        " max_storage_gb, retain_at_least, max_bytes, max_age_ms FROM streams WHERE sid = ?",
        (sid,),
    ).fetchone()
    if row is None or budget <= 0:
        return TrimResult(0, False)
    count, size, per_key, up_to, gb, at_least, max_bytes, max_age_ms = row
    options = StreamOptions(
        max_storage_gb=gb,
        retain_up_to=up_to,
        retain_at_least=at_least,
        max_bytes=max_bytes,
        max_age_ms=max_age_ms,
    )
    byte_limit = options.byte_limit
    count_excess = count - up_to if up_to is not None else 0
    floor = at_least or 0
    age_cut = now_us - max_age_ms * 1000 if max_age_ms is not None else None
    if count_excess <= 0 and age_cut is None and (byte_limit is None or size <= byte_limit):
        return TrimResult(0, False)

    removed = freed = 0
    last = 0
    gone: list[tuple[int, str]] = []
    more = False
    # Lazily stepped: only the rows that go (and one more) are read.
    for seq, key, data, data_bytes, updated in conn.execute(
        "SELECT seq, key, data, data_bytes, updated_at FROM messages WHERE stream = ?"
        " ORDER BY seq LIMIT ?",
        (sid, budget + 1),
    ):
        over_count = removed < count_excess
        over_bytes = (
            byte_limit is not None and size - freed > byte_limit and count - removed > floor
        )
        too_old = age_cut is not None and updated < age_cut
        if not (over_count or over_bytes or too_old):
            break
        if removed == budget:
            more = True
            break
        removed += 1
        freed += len(key) + stored_size(data, data_bytes)
        last = seq
        gone.append((seq, key))
    if not removed:
        return TrimResult(0, False)

    conn.execute("DELETE FROM messages WHERE stream = ? AND seq <= ?", (sid, last))
    if per_key:
        conn.executemany(
            "DELETE FROM latest_by_key WHERE stream = ? AND key = ? AND seq = ?",
            [(sid, key, seq) for seq, key in gone],
        )
    conn.execute(
        "UPDATE streams SET message_count = message_count - ?,"
        " storage_size = MAX(storage_size - ?, 0) WHERE sid = ?",
        (removed, freed, sid),
    )
    _move_consumers(conn, sid, last, gone)
    return TrimResult(removed, more)


def _move_consumers(
    conn: sqlite3.Connection, sid: int, last: int, gone: list[tuple[int, str]]
) -> None:
    """Move the stream's consumers past ``last``, dropping and counting what they lost."""
    lost = dict(
        conn.execute(
            "SELECT consumer, COUNT(*) FROM deliveries WHERE consumer IN"
            " (SELECT cid FROM consumers WHERE stream = ?)"
            f" AND seq <= ? AND state < {DEAD} GROUP BY consumer",
            (sid, last),
        ).fetchall()
    )
    conn.execute(
        "DELETE FROM deliveries WHERE consumer IN (SELECT cid FROM consumers WHERE stream = ?)"
        " AND seq <= ?",
        (sid, last),
    )
    lost_leased = leases.drop_upto(conn, sid, last)
    behind = conn.execute(
        "SELECT cid, cursor, filter_key_pattern FROM consumers WHERE stream = ? AND cursor < ?",
        (sid, last),
    ).fetchall()
    updates = {cid: (cursor, pattern) for cid, cursor, pattern in behind}
    for cid in (*lost, *lost_leased):
        updates.setdefault(cid, (last, ">"))
    for cid, (cursor, pattern) in updates.items():
        never_delivered = sum(1 for seq, key in gone if seq > cursor and matches(pattern, key))
        dropped = lost.get(cid, 0)
        dropped_leased = lost_leased.get(cid, 0)
        conn.execute(
            "UPDATE consumers SET cursor = MAX(cursor, ?), outstanding = MAX(outstanding - ?, 0),"
            " leased = MAX(leased - ?, 0), skipped = skipped + ? WHERE cid = ?",
            (last, dropped, dropped_leased, never_delivered + dropped + dropped_leased, cid),
        )
