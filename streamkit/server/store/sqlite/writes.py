"""Write operations; they run on the writer thread, inside its group transaction.

`WriteOps` also owns the in-memory dedupe window (`dedupe`), rebuilt from
``messages`` at start-up (its newest ``max_ids``), so it survives restarts.
"""

from __future__ import annotations

import secrets
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import NamedTuple

from streamkit.protocol.wire import StartPosition
from streamkit.server.store.base import (
    RETENTION_FIELDS,
    ConsumerRecord,
    ConsumerSpec,
    Delivery,
    PublishAck,
    StoreConflict,
    StoreNotFound,
    StreamChanges,
    StreamOptions,
    StreamRecord,
    data_hash,
    data_text,
)
from streamkit.server.store.sqlite import appends, leases, retention
from streamkit.server.store.sqlite.appends import PreparedBatch
from streamkit.server.store.sqlite.datafiles import Place, accounted_size, read_data, stored_size
from streamkit.server.store.sqlite.dedupe import DEFAULT_MAX_IDS, DedupeWindow, pack, unpack
from streamkit.server.store.sqlite.reads import first_seq_at, get_stream
from streamkit.server.store.sqlite.retention import TrimResult
from streamkit.server.store.sqlite.rows import (
    CONSUMER_COLUMNS,
    CONSUMER_FROM,
    M_COLUMNS,
    MESSAGE_COLUMNS,
    ConsumerMeta,
    StreamMeta,
    consumer_meta,
    consumer_record,
    deliveries_from_rows,
    messages_from_rows,
    now_us,
    parse_ack_ids,
    to_datetime,
)
from streamkit.server.store.sqlite.schema import (
    DEAD,
    IN_FLIGHT,
    WAITING,
    create_schema,
    key_filter_sql,
)

_NEVER = 2**62

SCAN_WINDOW = 20_000
"""Most seqs one receive scans for filter matches, so a sparse filter over a
long backlog can't hold the writer for long (the caller just asks again)."""

_ROWS_PER_INSERT = 64
"""Rows one multi-row INSERT stores (at most 640 parameters: under SQLite's old limit of 999)."""


@dataclass(frozen=True)
class _BulkInsert:
    """INSERT statements for rows of ``columns``: one row, and `_ROWS_PER_INSERT` rows.

    Storing a batch 64 rows to a statement instead of one costs about a third
    less than ``executemany`` (a statement step, and a GIL release, per row).
    """

    one: str
    many: str

    @classmethod
    def of(cls, table: str, columns: str) -> _BulkInsert:
        row = "(" + ", ".join("?" * len(columns.split(","))) + ")"
        head = f"INSERT INTO {table} ({columns}) VALUES "
        return cls(head + row, head + ", ".join([row] * _ROWS_PER_INSERT))

    def run(self, conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
        """Insert ``rows`` (tuples in column order)."""
        whole = len(rows) - len(rows) % _ROWS_PER_INSERT
        for start in range(0, whole, _ROWS_PER_INSERT):
            conn.execute(
                self.many, list(chain.from_iterable(rows[start : start + _ROWS_PER_INSERT]))
            )
        if whole < len(rows):
            conn.executemany(self.one, rows[whole:])


_INSERT_DELIVERIES = _BulkInsert.of(
    "deliveries", "consumer, seq, state, token, due, delivery_count"
)


class _Kept(NamedTuple):
    """The message a one_message_per_key stream keeps for a key, as far as a publish
    replacing it needs to know."""

    seq: int
    inserted_at: int
    updated_at: int
    data: str
    data_bytes: int | None
    data_hash: str
    data_file: int | None
    data_offset: int | None
    data_crc: int | None

    def same_data(self, conn: sqlite3.Connection, data: str | memoryview) -> bool:
        """Whether it carries ``data``. One stored with a hash (by format 3 or 4,
        which kept one) is compared by hash; one in a data file without, by its data
        read back; else by its inline data."""
        new_data = data_text(data)
        if self.data_hash:
            return self.data_hash == data_hash(new_data)
        if self.data_file is not None:
            size, offset = self.data_bytes, self.data_offset
            assert size is not None and offset is not None  # stored with data_file
            return size == len(new_data.encode()) and new_data == read_data(
                conn, self.data_file, offset, size, self.data_crc
            )
        return self.data == new_data


_KEPT_SQL = (
    f"SELECT {', '.join('m.' + column for column in _Kept._fields)} FROM latest_by_key l"
    " JOIN messages m ON m.stream = l.stream AND m.seq = l.seq WHERE l.stream = ? AND l.key = ?"
)


def _count_stored(conn: sqlite3.Connection, sid: int, last_seq: int, added: int, size: int) -> None:
    """A publish's change to its stream's counters: the new ``last_seq``, ``added``
    messages more and ``size`` characters more (fewer when replacements are shorter)."""
    conn.execute(
        "UPDATE streams SET last_seq = ?, message_count = message_count + ?,"
        " storage_size = storage_size + ? WHERE sid = ?",
        (last_seq, added, size, sid),
    )


def _start_cursor(conn: sqlite3.Connection, sid: int, start: StartPosition) -> int:
    """The cursor (last seq already passed) of a consumer starting at ``start``."""
    row = conn.execute("SELECT last_seq FROM streams WHERE sid = ?", (sid,)).fetchone()
    if row is None:
        raise StoreNotFound("stream")
    last_seq: int = row[0]
    if start == "all":
        cursor = 0
    elif start == "new":
        cursor = last_seq
    elif isinstance(start, datetime):
        first_at = first_seq_at(conn, sid, start)
        cursor = last_seq if first_at is None else first_at - 1
    else:
        cursor = max(start - 1, 0)
    # Start no earlier than the first message retention kept: receive need not
    # scan the gap the trimmed ones left, window by window.
    (first,) = conn.execute("SELECT MIN(seq) FROM messages WHERE stream = ?", (sid,)).fetchone()
    return max(cursor, last_seq if first is None else first - 1)


@dataclass(frozen=True)
class ReceiveResult:
    """What one receive pass found, and when to look again if nothing."""

    deliveries: list[Delivery]
    next_due_ms: int | None
    """Earliest wall-clock ms at which an unacked delivery becomes due again."""
    more: bool
    """True when the scan window ended before the stream did: ask again at once."""


class Stored(NamedTuple):
    """What a publish job stored."""

    published: int
    """Messages newly stored (a known id is not stored again)."""
    acks: list[PublishAck] | None
    """The acks in request order; None when the batch was appended whole, from
    ``first_seq`` on at ``stored_us`` (one `AckRun`)."""
    first_seq: int
    stored_us: int


class WriteOps:
    """Write operations plus the dedupe window they share (writer thread only)."""

    def __init__(self, dedupe_window_ms: int, dedupe_max_ids: int = DEFAULT_MAX_IDS) -> None:
        self._window = DedupeWindow(dedupe_window_ms, dedupe_max_ids)
        # cid -> no unacked delivery of that consumer is due before this wall-clock ms.
        # A lower bound (lowered on every change, made exact by each scan), so a
        # receive only looks for redeliveries when one can exist: no index needed.
        self._due_floor: dict[int, int] = {}
        self._last_stored_us = 0
        self.account_id = ""

    # transaction hooks, called by SqliteThread
    def commit(self) -> None:
        """Publish this transaction's dedupe entries."""
        self._window.commit(self._store_time())

    def rollback(self) -> None:
        """Forget this transaction's dedupe entries and due floors (rescan next time)."""
        self._window.rollback()
        self._due_floor.clear()

    def setup(self, conn: sqlite3.Connection) -> str:
        """Create the schema, load the account id and rebuild the dedupe window."""
        create_schema(conn)
        row = conn.execute("SELECT v FROM meta WHERE k = 'account_id'").fetchone()
        if row is None:
            self.account_id = str(uuid.uuid4())
            conn.execute("INSERT INTO meta (k, v) VALUES ('account_id', ?)", (self.account_id,))
        else:
            self.account_id = row[0]
        since = now_us() - self._window.window_us
        newest: list[tuple[int, int, str, int]] = []  # (updated_at, sid, id, seq)
        for (sid,) in conn.execute("SELECT sid FROM streams").fetchall():
            # updated_at grows with seq, so walk back from the end until outside the window.
            seen: set[str] = set()
            for seq, msg_id, upd in conn.execute(
                "SELECT seq, msg_id, updated_at FROM messages WHERE stream = ? ORDER BY seq DESC",
                (sid,),
            ):
                self._last_stored_us = max(self._last_stored_us, upd)
                if upd < since or len(seen) >= self._window.max_ids:
                    break
                if msg_id is not None and msg_id not in seen:
                    seen.add(msg_id)
                    newest.append((upd, sid, msg_id, seq))
        newest.sort()  # oldest first, as the window keeps them; the newest max_ids fit
        now, run_sid = now_us(), 0
        run: dict[str, int] = {}
        for upd, sid, msg_id, seq in newest[-self._window.max_ids :]:
            if sid != run_sid and run:  # runs of one stream, in time order
                self._window.load(run_sid, run, now)
                run = {}
            run_sid = sid
            run[msg_id] = pack(seq, upd)
        self._window.load(run_sid, run, now)
        return self.account_id

    # streams

    def create_stream(
        self, conn: sqlite3.Connection, name: str, options: StreamOptions
    ) -> tuple[StreamMeta, StreamRecord]:
        """Insert a stream row."""
        now = now_us()
        try:
            cur = conn.execute(
                "INSERT INTO streams (id, name, one_message_per_key, process_unmodified,"
                " max_storage_gb, retain_up_to, retain_at_least, max_bytes, max_age_ms,"
                " inserted_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(uuid.uuid4()),
                    name,
                    options.one_message_per_key,
                    options.process_unmodified,
                    options.max_storage_gb,
                    options.retain_up_to,
                    options.retain_at_least,
                    options.max_bytes,
                    options.max_age_ms,
                    now,
                    now,
                ),
            )
        except sqlite3.IntegrityError:
            raise StoreConflict("name") from None
        sid = cur.lastrowid
        assert sid is not None
        record = get_stream(conn, sid, self.account_id)
        return StreamMeta(sid=sid, id=record.id, name=name), record

    def update_stream(
        self, conn: sqlite3.Connection, sid: int, changes: StreamChanges
    ) -> StreamRecord:
        """Set retention limits and take the first trim step; the store's trimmer does the rest."""
        fields = [f for f in RETENTION_FIELDS if f in changes]
        now = now_us()
        if fields:
            assignments = ", ".join(f"{f} = ?" for f in fields)
            updated = conn.execute(
                f"UPDATE streams SET {assignments}, updated_at = ? WHERE sid = ?",
                (*(changes[f] for f in fields), now, sid),
            ).rowcount
            if not updated:
                raise StoreNotFound("stream")
        retention.trim(conn, sid, retention.TRIM_BATCH, now)
        return get_stream(conn, sid, self.account_id)

    def trim(self, conn: sqlite3.Connection, sid: int, budget: int) -> TrimResult:
        """One bounded retention step on a stream (see the ``retention`` module)."""
        return retention.trim(conn, sid, budget, now_us())

    def delete_stream(self, conn: sqlite3.Connection, sid: int) -> None:
        """Delete a stream, its consumers and their deliveries; its messages are left to
        `retention.purge` steps."""
        conn.execute(
            "DELETE FROM deliveries WHERE consumer IN (SELECT cid FROM consumers WHERE stream = ?)",
            (sid,),
        )
        conn.execute(
            "DELETE FROM leases WHERE consumer IN (SELECT cid FROM consumers WHERE stream = ?)",
            (sid,),
        )
        conn.execute("DELETE FROM consumers WHERE stream = ?", (sid,))
        conn.execute("DELETE FROM latest_by_key WHERE stream = ?", (sid,))
        if conn.execute("DELETE FROM streams WHERE sid = ?", (sid,)).rowcount == 0:
            raise StoreNotFound("stream")

    # publishing

    def publish(self, conn: sqlite3.Connection, sid: int, batch: PreparedBatch) -> Stored:
        """Store a batch atomically (new messages only: a known ``id`` is acked with
        the seq it was stored at). Its large data is in data files already (`placed`)."""
        if batch.blobs and batch.places is None:
            raise ValueError("a batch with large data must be placed before it is stored")
        row = conn.execute(
            "SELECT last_seq, one_message_per_key, process_unmodified,"
            f" {retention.HAS_LIMITS} FROM streams WHERE sid = ?",
            (sid,),
        ).fetchone()
        if row is None:
            raise StoreNotFound("stream")
        last_seq, per_key, unmodified, limited = row
        now = self._store_time()
        self._window.expire(now)
        if per_key:
            published, acks = self._publish_per_key(
                conn, sid, batch, last_seq, bool(unmodified), now
            )
        elif batch.values is not None and not self._knows_any(batch, now):
            published, acks = self._append(conn, sid, batch, last_seq, now), None
        else:
            published, acks = self._publish(conn, sid, batch, last_seq, now)
        if limited and published:
            # Trim as much as was stored (and a little more): a stream at its limit stays there.
            retention.trim(conn, sid, published + retention.INLINE_SLACK, now)
        return Stored(published, acks, last_seq + 1, now)

    def _append(
        self, conn: sqlite3.Connection, sid: int, batch: PreparedBatch, last_seq: int, now: int
    ) -> int:
        """Store a batch of one shape none of whose ids the window knows (see `appends`)."""
        assert batch.values is not None
        first = last_seq + 1
        appends.append(conn, sid, first, now, batch.columns, batch.values, batch.places)
        stored = len(batch.messages)
        _count_stored(conn, sid, last_seq + stored, stored, batch.size)
        packed = pack(first, now)  # pack(first + i, now) == packed + i
        self._window.stage_keys(
            {key: packed + i for i, key in enumerate(batch.id_keys) if key is not None},
            batch.id_range,
        )
        return stored

    def _publish(
        self,
        conn: sqlite3.Connection,
        sid: int,
        batch: PreparedBatch,
        last_seq: int,
        now: int,
    ) -> tuple[int, list[PublishAck]]:
        """Publish into a stream without ``one_message_per_key``, message by message: a
        batch of mixed shapes, or with ids seen before (those are acked, not stored).
        The stored ones still get consecutive seqs and go through `appends.append`."""
        committed = to_datetime(now)
        staged: dict[int, int] = {}  # window key -> pack(seq, committed_us)
        values: list[object] = []  # appends.FULL_COLUMNS of each stored message
        places: list[Place | None] = []  # where each one's data went
        acks: list[PublishAck] = []
        first, size = last_seq + 1, 0
        for i, (m, id_key) in enumerate(zip(batch.messages, batch.id_keys, strict=True)):
            msg_id = m.get("id")
            if (known := self._known_ack(staged, id_key, msg_id, now)) is not None:
                acks.append(known)
                continue
            if id_key is not None:
                staged[id_key] = pack(last_seq + 1, now)
            last_seq += 1
            values += appends.full_row(m)
            places.append(batch.place_of(i))
            size += len(m["key"]) + accounted_size(m["data"])
            acks.append({"id": msg_id, "seq": last_seq, "committed": committed})
        stored = last_seq - first + 1
        if stored:
            appends.append(conn, sid, first, now, appends.FULL_COLUMNS, values, places)
            _count_stored(conn, sid, last_seq, stored, size)
        self._window.stage_keys(staged, batch.id_range)
        return stored, acks

    def _publish_per_key(
        self,
        conn: sqlite3.Connection,
        sid: int,
        batch: PreparedBatch,
        last_seq: int,
        process_unmodified: bool,
        now: int,
    ) -> tuple[int, list[PublishAck]]:
        """Publish into a one_message_per_key stream: each key keeps its latest message only."""
        committed = to_datetime(now)
        staged: dict[int, int] = {}  # window key -> pack(seq, committed_us)
        acks: list[PublishAck] = []
        published = removed = size_delta = 0
        for i, (m, id_key) in enumerate(zip(batch.messages, batch.id_keys, strict=True)):
            msg_id = m.get("id")
            if (known := self._known_ack(staged, id_key, msg_id, now)) is not None:
                acks.append(known)
                continue
            key, data = m["key"], m["data"]
            inserted = now
            found = conn.execute(_KEPT_SQL, (sid, key)).fetchone()
            if found is not None:
                old = _Kept(*found)
                if not process_unmodified and old.same_data(conn, data):
                    # Identical data: nothing to store; the ack points at the kept message.
                    acks.append(
                        {"id": msg_id, "seq": old.seq, "committed": to_datetime(old.updated_at)}
                    )
                    if id_key is not None:
                        staged[id_key] = pack(old.seq, old.updated_at)
                    continue
                conn.execute("DELETE FROM messages WHERE stream = ? AND seq = ?", (sid, old.seq))
                removed += 1
                size_delta -= len(key) + stored_size(old.data, old.data_bytes)
                inserted = old.inserted_at
            last_seq += 1
            row = appends.full_row(m)
            appends.insert_kept(conn, sid, last_seq, inserted, now, row, batch.place_of(i))
            conn.execute(
                "INSERT OR REPLACE INTO latest_by_key (stream, key, seq) VALUES (?, ?, ?)",
                (sid, key, last_seq),
            )
            published += 1
            size_delta += len(key) + accounted_size(data)
            acks.append({"id": msg_id, "seq": last_seq, "committed": committed})
            if id_key is not None:
                staged[id_key] = pack(last_seq, now)
        if published:
            _count_stored(conn, sid, last_seq, published - removed, size_delta)
        self._window.stage_keys(staged, batch.id_range)
        return published, acks

    def _known_ack(
        self, staged: dict[int, int], id_key: int | None, msg_id: str | None, now: int
    ) -> PublishAck | None:
        """The ack of a message whose id this batch (``staged``) or the window has stored
        already, else None (it is new, or has no id)."""
        if id_key is None:
            return None
        hit = staged.get(id_key) or self._window.find_key(id_key, now)
        if hit is None:
            return None
        seq, at = unpack(hit)
        return {"id": msg_id, "seq": seq, "committed": to_datetime(at)}

    def _knows_any(self, batch: PreparedBatch, now: int) -> bool:
        """Whether the dedupe window holds any of ``batch``'s ids."""
        return self._window.knows_any(batch.id_keys, now, batch.id_range)

    def _store_time(self) -> int:
        """The time (µs) a publish stores its messages at: the wall clock, but never
        earlier than a time already stored, so ``updated_at`` grows with seq even when
        the clock steps back (`reads.first_seq_at` and retention by age rely on it)."""
        self._last_stored_us = max(now_us(), self._last_stored_us)
        return self._last_stored_us

    # consumers

    def create_consumer(
        self, conn: sqlite3.Connection, sid: int, spec: ConsumerSpec
    ) -> tuple[ConsumerMeta, ConsumerRecord]:
        """Insert a consumer positioned according to ``spec.start``."""
        cursor = _start_cursor(conn, sid, spec.start)
        now = now_us()
        try:
            cur = conn.execute(
                "INSERT INTO consumers (id, stream, name, filter_key_pattern, ack_wait_ms,"
                " max_ack_pending, max_deliver, ephemeral, inactive_threshold_ms, cursor,"
                " inserted_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(uuid.uuid4()),
                    sid,
                    spec.name,
                    spec.filter_key_pattern,
                    spec.ack_wait_ms,
                    spec.max_ack_pending,
                    spec.max_deliver,
                    spec.ephemeral,
                    spec.inactive_threshold_ms,
                    cursor,
                    now,
                    now,
                ),
            )
        except sqlite3.IntegrityError:
            raise StoreConflict("name") from None
        row = conn.execute(
            f"SELECT {CONSUMER_COLUMNS}{CONSUMER_FROM} WHERE c.cid = ?", (cur.lastrowid,)
        ).fetchone()
        return consumer_meta(row), consumer_record(row, self.account_id)

    def reset_consumer(
        self, conn: sqlite3.Connection, c: ConsumerMeta, start: StartPosition
    ) -> None:
        """Seek: drop every delivery of the consumer and move its cursor to ``start``."""
        cursor = _start_cursor(conn, c.sid, start)
        conn.execute("DELETE FROM deliveries WHERE consumer = ?", (c.cid,))
        conn.execute("DELETE FROM leases WHERE consumer = ?", (c.cid,))
        if (
            conn.execute(
                "UPDATE consumers SET cursor = ?, outstanding = 0, leased = 0, updated_at = ?"
                " WHERE cid = ?",
                (cursor, now_us(), c.cid),
            ).rowcount
            == 0
        ):
            raise StoreNotFound("consumer")
        self._due_floor.pop(c.cid, None)

    def redrive(self, conn: sqlite3.Connection, c: ConsumerMeta, seqs: Sequence[int] | None) -> int:
        """Make dead letters (``seqs``, or all) due now with a fresh delivery count."""
        now = now_us() // 1000
        self._bury(conn, c, now)
        sql = (
            f"UPDATE deliveries SET state = {WAITING}, token = NULL, due = ?, delivery_count = 0"
            f" WHERE consumer = ? AND state = {DEAD}"
        )
        if seqs is None:
            moved = conn.execute(sql, (now, c.cid)).rowcount
        else:
            moved = conn.executemany(
                sql + " AND seq = ?", [(now, c.cid, seq) for seq in set(seqs)]
            ).rowcount
        if moved:
            # Waiting again, so outstanding again (dead letters are not).
            conn.execute(
                "UPDATE consumers SET outstanding = outstanding + ? WHERE cid = ?", (moved, c.cid)
            )
            self._due_floor[c.cid] = min(self._due_floor.get(c.cid, 0), now)
        return moved

    def discard_dead(
        self, conn: sqlite3.Connection, c: ConsumerMeta, seqs: Sequence[int] | None
    ) -> int:
        """Delete dead letters (``seqs``, or all), as an ack would."""
        self._bury(conn, c, now_us() // 1000)
        sql = f"DELETE FROM deliveries WHERE consumer = ? AND state = {DEAD}"
        if seqs is None:
            return conn.execute(sql, (c.cid,)).rowcount
        return conn.executemany(sql + " AND seq = ?", [(c.cid, seq) for seq in set(seqs)]).rowcount

    def _bury(self, conn: sqlite3.Connection, c: ConsumerMeta, now: int) -> None:
        """Mark deliveries past their last attempt dead now, as the next receive would:
        a dead letter the listing shows is one redrive and discard can act on."""
        if c.max_deliver is None:
            return
        buried = conn.execute(
            f"UPDATE deliveries SET state = {DEAD}, token = NULL WHERE consumer = ?"
            f" AND state < {DEAD} AND due <= ? AND delivery_count >= ?",
            (c.cid, now, c.max_deliver),
        ).rowcount
        self._release(conn, c, buried)

    def delete_consumer(self, conn: sqlite3.Connection, cid: int) -> None:
        """Delete a consumer and its delivery state."""
        self._due_floor.pop(cid, None)
        conn.execute("DELETE FROM deliveries WHERE consumer = ?", (cid,))
        conn.execute("DELETE FROM leases WHERE consumer = ?", (cid,))
        if conn.execute("DELETE FROM consumers WHERE cid = ?", (cid,)).rowcount == 0:
            raise StoreNotFound("consumer")

    def receive(self, conn: sqlite3.Connection, c: ConsumerMeta, batch_size: int) -> ReceiveResult:
        """Hand out up to ``batch_size`` deliveries: due redeliveries first, then new messages."""
        row = conn.execute(
            "SELECT cursor, outstanding, leased FROM consumers WHERE cid = ?", (c.cid,)
        ).fetchone()
        if row is None:
            raise StoreNotFound("consumer")
        cursor, outstanding, leased = row
        now = now_us() // 1000
        deadline = now + c.ack_wait_ms
        token_base = secrets.token_hex(8)
        out: list[Delivery] = []
        floor = self._due_floor.get(c.cid, 0)
        released = expired = 0
        if now >= floor:
            released, expired, floor = self._redeliver(conn, c, batch_size, now, token_base, out)
        outstanding += expired - released
        leased -= expired
        more = False
        new_cursor = cursor
        redelivered = len(out)
        room = min(batch_size - redelivered, c.max_ack_pending - outstanding - leased)
        use_lease = leases.usable(c.max_deliver)
        if room > 0:
            new_cursor, more = self._deliver_new(
                conn, c, cursor, room, deadline, token_base, out, use_lease
            )
        delivered_new = len(out) - redelivered
        if delivered_new:
            floor = min(floor, deadline)
            if use_lease:
                leased += delivered_new
            else:
                outstanding += delivered_new
        self._due_floor[c.cid] = floor
        if new_cursor != cursor or released or delivered_new:
            conn.execute(
                "UPDATE consumers SET cursor = ?, outstanding = ?, leased = ? WHERE cid = ?",
                (new_cursor, outstanding, leased, c.cid),
            )
        return ReceiveResult(out, None if floor == _NEVER else floor, more)

    def _redeliver(
        self,
        conn: sqlite3.Connection,
        c: ConsumerMeta,
        limit: int,
        now: int,
        token_base: str,
        out: list[Delivery],
    ) -> tuple[int, int, int]:
        """Dead-letter exhausted deliveries and hand out due ones again, after moving
        the messages of leases past their deadline into delivery rows.

        Returns (deliveries no longer outstanding, lease messages moved, new due floor).
        Moving lease messages updated the consumer's stored counters already; the
        released ones are the caller's to subtract.
        """
        released = 0
        expired = leases.expire(conn, c.cid, now)
        if c.max_deliver is not None:
            released += conn.execute(
                f"UPDATE deliveries SET state = {DEAD}, token = NULL WHERE consumer = ?"
                f" AND state < {DEAD} AND due <= ? AND delivery_count >= ?",
                (c.cid, now, c.max_deliver),
            ).rowcount
        due = conn.execute(
            f"SELECT d.delivery_count, d.seq, {M_COLUMNS} FROM deliveries d"
            " LEFT JOIN messages m ON m.stream = ? AND m.seq = d.seq"
            f" WHERE d.consumer = ? AND d.state < {DEAD} AND d.due <= ?"
            " ORDER BY d.seq LIMIT ?",
            (c.sid, c.cid, now, limit),
        ).fetchall()
        if due:
            # r = (delivery_count, d.seq, *message columns); the message's are NULL when it is
            # gone, so the delivery's own seq names the row to delete.
            gone = [(c.cid, r[1]) for r in due if r[3] is None]
            if gone:
                # Superseded by compaction (one_message_per_key): nothing left to deliver.
                conn.executemany("DELETE FROM deliveries WHERE consumer = ? AND seq = ?", gone)
                released += len(gone)
                due = [r for r in due if r[3] is not None]
            msgs = messages_from_rows(conn, [r[2:] for r in due], c.stream_id)
            deadline = now + c.ack_wait_ms
            updates = []
            for i, (r, msg) in enumerate(zip(due, msgs, strict=True)):
                token = f"{token_base}{i:x}"
                updates.append((token, deadline, c.cid, msg["seq"]))
                out.append(
                    {"ack_id": f"{msg['seq']}.{token}", "message": msg, "delivery_count": r[0] + 1}
                )
            conn.executemany(
                f"UPDATE deliveries SET state = {IN_FLIGHT}, token = ?, due = ?,"
                " delivery_count = delivery_count + 1 WHERE consumer = ? AND seq = ?",
                updates,
            )
        (floor,) = conn.execute(
            f"SELECT COALESCE(MIN(due), {_NEVER}) FROM deliveries"
            f" WHERE consumer = ? AND state < {DEAD}",
            (c.cid,),
        ).fetchone()
        lease_due = leases.min_due(conn, c.cid)
        if lease_due is not None:
            floor = min(floor, lease_due)
        return released, expired, floor

    def _deliver_new(
        self,
        conn: sqlite3.Connection,
        c: ConsumerMeta,
        cursor: int,
        room: int,
        deadline: int,
        token_base: str,
        out: list[Delivery],
        use_lease: bool,
    ) -> tuple[int, bool]:
        """Hand out up to ``room`` matching messages past ``cursor``, in one lease
        (``use_lease``) or a delivery row each.

        Returns (new cursor, whether the scan window stopped short of the stream's end).
        """
        (last_seq,) = conn.execute(
            "SELECT last_seq FROM streams WHERE sid = ?", (c.sid,)
        ).fetchone()
        if cursor >= last_seq:
            return cursor, False
        upto = min(last_seq, cursor + SCAN_WINDOW)
        clause, args = key_filter_sql(c.filter_key_pattern)
        rows = conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE stream = ? AND seq > ?"
            f" AND seq <= ?{clause} ORDER BY seq LIMIT ?",
            (c.sid, cursor, upto, *args, room),
        ).fetchall()
        cursor = rows[-1][0] if len(rows) == room else upto
        if rows and use_lease:
            token = leases.new_token()
            out.extend(deliveries_from_rows(conn, rows, c.stream_id, token))
            leases.add(conn, c.cid, token, deadline, [r[0] for r in rows])
        elif rows:
            inserts: list[tuple[object, ...]] = []
            for i, msg in enumerate(messages_from_rows(conn, rows, c.stream_id), len(out)):
                seq, token = msg["seq"], f"{token_base}{i:x}"
                inserts.append((c.cid, seq, IN_FLIGHT, token, deadline, 1))
                out.append({"ack_id": f"{seq}.{token}", "message": msg, "delivery_count": 1})
            _INSERT_DELIVERIES.run(conn, inserts)
        return cursor, cursor < last_seq

    def ack(self, conn: sqlite3.Connection, c: ConsumerMeta, ack_ids: Sequence[str]) -> bool:
        """Settle acked deliveries (in leases or rows); True when that freed room under a
        full max_ack_pending."""
        from_leases, rows = leases.ack(conn, c.cid, ack_ids)
        done = 0
        if rows:
            done = conn.executemany(
                f"DELETE FROM deliveries WHERE consumer = ? AND seq = ? AND token = ?"
                f" AND state = {IN_FLIGHT}",
                rows,
            ).rowcount
        return self._release(conn, c, done, from_leases)

    def _release(
        self, conn: sqlite3.Connection, c: ConsumerMeta, count: int, leased: int = 0
    ) -> bool:
        """``count`` delivery rows and ``leased`` lease messages are no longer outstanding."""
        if count <= 0 and leased <= 0:
            return False
        row = conn.execute(
            "SELECT outstanding + leased FROM consumers WHERE cid = ?", (c.cid,)
        ).fetchone()
        if row is None:
            return False
        conn.execute(
            "UPDATE consumers SET outstanding = outstanding - ?, leased = leased - ? WHERE cid = ?",
            (max(count, 0), leased, c.cid),
        )
        return bool(row[0] >= c.max_ack_pending)

    def nack(
        self,
        conn: sqlite3.Connection,
        c: ConsumerMeta,
        ack_ids: Sequence[str],
        delay_ms: int,
        reason: str | None = None,
    ) -> bool:
        """Make deliveries due again after ``delay_ms`` (or dead when out of attempts),
        keeping ``reason`` (when given) as their ``last_error``.

        Returns True when anything became deliverable or freed room.
        """
        now = now_us() // 1000
        leases.detach(conn, c.cid, parse_ack_ids(c.cid, ack_ids))
        dead = 0
        if c.max_deliver is not None:
            rows = parse_ack_ids(c.cid, ack_ids, reason)
            dead = conn.executemany(
                f"UPDATE deliveries SET state = {DEAD}, token = NULL, due = {now},"
                " last_error = COALESCE(?, last_error)"
                f" WHERE consumer = ? AND seq = ? AND token = ? AND state = {IN_FLIGHT}"
                f" AND delivery_count >= {int(c.max_deliver)}",
                rows,
            ).rowcount
        rows = parse_ack_ids(c.cid, ack_ids, now + delay_ms, reason)
        waiting = conn.executemany(
            f"UPDATE deliveries SET state = {WAITING}, token = NULL, due = ?,"
            " last_error = COALESCE(?, last_error)"
            f" WHERE consumer = ? AND seq = ? AND token = ? AND state = {IN_FLIGHT}",
            rows,
        ).rowcount
        if waiting:
            self._due_floor[c.cid] = min(self._due_floor.get(c.cid, 0), now + delay_ms)
        freed = self._release(conn, c, dead)
        return freed or waiting > 0

    def release(self, conn: sqlite3.Connection, c: ConsumerMeta, ack_ids: Sequence[str]) -> bool:
        """Hand in-flight deliveries back, due now, as if they had never been delivered.

        For deliveries no client saw (its long-poll was abandoned): unlike a nack,
        the attempt is not counted, so it cannot push a message to ``max_deliver``.
        """
        now = now_us() // 1000
        rows = parse_ack_ids(c.cid, ack_ids, now)
        leases.detach(conn, c.cid, rows)
        back = conn.executemany(
            f"UPDATE deliveries SET state = {WAITING}, token = NULL, due = ?,"
            " delivery_count = delivery_count - 1"
            f" WHERE consumer = ? AND seq = ? AND token = ? AND state = {IN_FLIGHT}",
            rows,
        ).rowcount
        if back:
            self._due_floor[c.cid] = min(self._due_floor.get(c.cid, 0), now)
        return back > 0

    def extend(self, conn: sqlite3.Connection, c: ConsumerMeta, ack_ids: Sequence[str]) -> None:
        """Push in-flight deliveries' deadlines to now + ack_wait."""
        due = now_us() // 1000 + c.ack_wait_ms
        rows = leases.extend(conn, c.cid, parse_ack_ids(c.cid, ack_ids, due), due)
        leases.detach(conn, c.cid, rows)
        conn.executemany(
            "UPDATE deliveries SET due = ?"
            f" WHERE consumer = ? AND seq = ? AND token = ? AND state = {IN_FLIGHT}",
            rows,
        )
