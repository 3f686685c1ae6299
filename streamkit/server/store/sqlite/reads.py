"""Read-only operations; they run on the reader thread (never the event loop)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import cast

from streamkit.server.store.base import (
    ConsumerRecord,
    ConsumerStats,
    DeadLetter,
    Message,
    MessageQuery,
    StoreNotFound,
    StreamRecord,
)
from streamkit.server.store.sqlite import leases
from streamkit.server.store.sqlite.rows import (
    CONSUMER_COLUMNS,
    CONSUMER_FROM,
    M_COLUMNS,
    MESSAGE_COLUMNS,
    STREAM_COLUMNS,
    ConsumerMeta,
    StreamMeta,
    consumer_meta,
    consumer_record,
    messages_from_rows,
    now_us,
    stream_record,
    to_us,
)
from streamkit.server.store.sqlite.schema import DEAD, IN_FLIGHT, key_filter_sql


def load_catalog(
    conn: sqlite3.Connection,
) -> tuple[str, list[StreamMeta], list[ConsumerMeta]]:
    """The account id and every stream and consumer, for the event loop's cache."""
    account_id = conn.execute("SELECT v FROM meta WHERE k = 'account_id'").fetchone()[0]
    streams = [
        StreamMeta(sid=r[0], id=r[1], name=r[2])
        for r in conn.execute("SELECT sid, id, name FROM streams ORDER BY sid")
    ]
    consumers = [
        consumer_meta(r)
        for r in conn.execute(f"SELECT {CONSUMER_COLUMNS}{CONSUMER_FROM} ORDER BY c.cid")
    ]
    return account_id, streams, consumers


def list_streams(conn: sqlite3.Connection, account_id: str) -> list[StreamRecord]:
    """Every stream, oldest first."""
    rows = conn.execute(f"SELECT {STREAM_COLUMNS} FROM streams ORDER BY sid").fetchall()
    return [stream_record(r, account_id) for r in rows]


def get_stream(conn: sqlite3.Connection, sid: int, account_id: str) -> StreamRecord:
    """One stream with current stats."""
    row = conn.execute(f"SELECT {STREAM_COLUMNS} FROM streams WHERE sid = ?", (sid,)).fetchone()
    if row is None:
        raise StoreNotFound("stream")
    return stream_record(row, account_id)


def list_consumers(conn: sqlite3.Connection, sid: int, account_id: str) -> list[ConsumerRecord]:
    """A stream's consumers, oldest first."""
    rows = conn.execute(
        f"SELECT {CONSUMER_COLUMNS}{CONSUMER_FROM} WHERE c.stream = ? ORDER BY c.cid", (sid,)
    ).fetchall()
    return [consumer_record(r, account_id) for r in rows]


def _dead_condition(alias: str) -> str:
    # A delivery past its last deadline with max_deliver used up is dead even
    # before a receive gets round to marking it.
    return (
        f"({alias}.state = {DEAD} OR (:max_deliver IS NOT NULL AND {alias}.state < {DEAD}"
        f" AND {alias}.due <= :now AND {alias}.delivery_count >= :max_deliver))"
    )


def get_consumer(conn: sqlite3.Connection, cid: int, account_id: str) -> ConsumerRecord:
    """One consumer with stats (pending, in flight, dead, skipped)."""
    row = conn.execute(
        f"SELECT {CONSUMER_COLUMNS}, c.cursor, c.skipped{CONSUMER_FROM} WHERE c.cid = ?", (cid,)
    ).fetchone()
    if row is None:
        raise StoreNotFound("consumer")
    meta = consumer_meta(row)
    cursor, skipped = row[13], row[14]
    now = now_us() // 1000
    params = {"cid": cid, "now": now, "max_deliver": meta.max_deliver, "sid": meta.sid}
    in_flight, dead, waiting = conn.execute(
        f"""SELECT
              COALESCE(SUM(d.state = {IN_FLIGHT} AND d.due > :now), 0),
              COALESCE(SUM({_dead_condition("d")}), 0),
              COALESCE(SUM(d.state < {DEAD} AND NOT {_dead_condition("d")}
                           AND NOT (d.state = {IN_FLIGHT} AND d.due > :now)), 0)
            FROM deliveries d JOIN messages m ON m.stream = :sid AND m.seq = d.seq
            WHERE d.consumer = :cid""",
        params,
    ).fetchone()
    leased_in_flight, leased_overdue = leases.counts(conn, cid, meta.sid, now)
    in_flight += leased_in_flight
    waiting += leased_overdue
    clause, args = key_filter_sql(meta.filter_key_pattern)
    (fresh,) = conn.execute(
        f"SELECT COUNT(*) FROM messages WHERE stream = ? AND seq > ?{clause}",
        (meta.sid, cursor, *args),
    ).fetchone()
    stats = ConsumerStats(pending=fresh + waiting, in_flight=in_flight, dead=dead, skipped=skipped)
    return consumer_record(row, account_id, stats)


def read_messages(
    conn: sqlite3.Connection, sid: int, stream_id: str, query: MessageQuery
) -> list[Message]:
    """A page of a stream's messages, by seq."""
    sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE stream = ?"
    args: list[object] = [sid]
    if query.from_time is not None:
        first = first_seq_at(conn, sid, query.from_time)
        if first is None:
            return []
        sql += " AND seq >= ?"
        args.append(first)
    if query.after_seq is not None:
        sql += " AND seq > ?"
        args.append(query.after_seq)
    if query.before_seq is not None:
        sql += " AND seq < ?"
        args.append(query.before_seq)
    clause, filter_args = key_filter_sql(query.key_pattern)
    sql += clause + (" ORDER BY seq DESC" if query.descending else " ORDER BY seq") + " LIMIT ?"
    args.extend(filter_args)
    args.append(query.limit)
    return messages_from_rows(conn, conn.execute(sql, args).fetchall(), stream_id)


_SEQ_RANGE = (  # two subqueries: SQLite seeks for a lone MIN or MAX, scans for both at once
    "SELECT (SELECT MIN(seq) FROM messages WHERE stream = :sid),"
    " (SELECT MAX(seq) FROM messages WHERE stream = :sid)"
)
_NEXT_STORED = (
    "SELECT seq, updated_at FROM messages WHERE stream = ? AND seq >= ? ORDER BY seq LIMIT 1"
)


def first_seq_at(conn: sqlite3.Connection, sid: int, when: datetime) -> int | None:
    """The seq of the stream's first message stored at or after ``when`` (None: none is).

    A binary search over seq, one primary-key seek a step (about 20 for a million
    messages): messages are stored in seq order and their ``updated_at`` never
    decreases along seq (the writer's clock does not step back), so no index on
    time has to be kept up on every insert. In a ``one_message_per_key`` stream this
    is the time each key's kept message was stored, not when its key first was.
    """
    at = to_us(when)
    lo, hi = conn.execute(_SEQ_RANGE, {"sid": sid}).fetchone()
    if lo is None:
        return None
    found: int | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        seq, stored = conn.execute(_NEXT_STORED, (sid, mid)).fetchone()  # mid <= MAX(seq)
        if stored >= at:
            found, hi = seq, mid - 1
        else:
            lo = seq + 1
    return found


def dead_letters(
    conn: sqlite3.Connection, consumer: ConsumerMeta, limit: int, after_seq: int = 0
) -> list[DeadLetter]:
    """A consumer's dead-lettered messages past ``after_seq``, by seq."""
    params = {
        "cid": consumer.cid,
        "sid": consumer.sid,
        "now": now_us() // 1000,
        "max_deliver": consumer.max_deliver,
        "limit": limit,
        "after": after_seq,
    }
    rows = conn.execute(
        f"""SELECT d.delivery_count, d.last_error, {M_COLUMNS} FROM deliveries d
            JOIN messages m ON m.stream = :sid AND m.seq = d.seq
            WHERE d.consumer = :cid AND d.seq > :after AND {_dead_condition("d")}
            ORDER BY d.seq LIMIT :limit""",
        params,
    ).fetchall()
    messages = messages_from_rows(conn, [r[2:] for r in rows], consumer.stream_id)
    out: list[DeadLetter] = []
    for r, m in zip(rows, messages, strict=True):
        dead = cast(DeadLetter, m)
        dead["delivery_count"] = int(r[0])
        if r[1] is not None:
            dead["last_error"] = r[1]
        out.append(dead)
    return out


# -- writes (writer thread) ---------------------------------------------------
