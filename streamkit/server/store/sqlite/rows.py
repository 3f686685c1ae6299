"""Rows to records: timestamps, cached identities and wire-shaped messages.

Shared by the reader and writer sides of the SQLite engine.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from streamkit.server.store.base import (
    ConsumerRecord,
    ConsumerStats,
    Delivery,
    Message,
    StreamOptions,
    StreamRecord,
    StreamStats,
)
from streamkit.server.store.sqlite.datafiles import read_data

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

MESSAGE_COLUMNS = (
    "seq, key, data, data_hash, msg_id, headers, encoding, inserted_at, updated_at,"
    " data_file, data_offset, data_bytes, data_crc"
)
"""A message's columns, and where its data is when it is in a data file (``datafiles``)."""
M_COLUMNS = ", ".join("m." + c for c in MESSAGE_COLUMNS.split(", "))


def now_us() -> int:
    """Wall-clock time in microseconds (what timestamps are stored as)."""
    return time.time_ns() // 1000


def to_us(when: datetime) -> int:
    """An aware datetime as a stored microsecond timestamp."""
    return (when - _EPOCH) // timedelta(microseconds=1)


def to_datetime(us: int) -> datetime:
    """A stored microsecond timestamp as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class StreamMeta:
    """The immutable facts about a stream the event loop caches."""

    sid: int
    id: str
    name: str


@dataclass(frozen=True)
class ConsumerMeta:
    """The immutable facts about a consumer the event loop caches and ops need."""

    cid: int
    id: str
    name: str
    sid: int
    stream_id: str
    filter_key_pattern: str
    ack_wait_ms: int
    max_ack_pending: int
    max_deliver: int | None
    ephemeral: bool
    inactive_threshold_ms: int | None


def messages_from_rows(
    conn: sqlite3.Connection, rows: Sequence[Sequence[Any]], stream_id: str
) -> list[Message]:
    """Rows of ``MESSAGE_COLUMNS`` (read on ``conn``) as wire-shaped messages."""
    out: list[Message] = []
    last_us = -1
    last_dt = _EPOCH
    for seq, key, data, hash_, msg_id, headers, encoding, ins, upd, file, at, size, crc in rows:
        if file is not None:
            data = read_data(conn, file, at, size, crc)
        # A batch shares its timestamps; skip rebuilding the same datetime.
        if ins != last_us:
            last_us, last_dt = ins, to_datetime(ins)
        inserted: datetime = last_dt
        updated = inserted if upd == ins else to_datetime(upd)
        msg: Message = {
            "key": key,
            "stream_id": stream_id,
            "data": data,
            "seq": seq,
            "inserted_at": inserted,
            "updated_at": updated,
        }
        if hash_:  # stored by formats 3 and 4; the others' is computed when sent
            msg["data_hash"] = hash_
        if msg_id is not None:
            msg["id"] = msg_id
        if headers is not None:
            msg["headers"] = orjson.loads(headers)
        if encoding is not None:
            msg["encoding"] = encoding
        out.append(msg)
    return out


def deliveries_from_rows(
    conn: sqlite3.Connection, rows: Sequence[Sequence[Any]], stream_id: str, token: str
) -> list[Delivery]:
    """Rows of ``MESSAGE_COLUMNS`` as first deliveries sharing ``token`` (one lease)."""
    return [
        {"ack_id": f"{m['seq']}.{token}", "message": m, "delivery_count": 1}
        for m in messages_from_rows(conn, rows, stream_id)
    ]


STREAM_COLUMNS = (
    "sid, id, name, one_message_per_key, process_unmodified, max_storage_gb, retain_up_to,"
    " retain_at_least, max_bytes, max_age_ms, message_count, storage_size, inserted_at,"
    " updated_at,"
    " (SELECT COUNT(*) FROM consumers c WHERE c.stream = streams.sid)"
)


def stream_record(row: Sequence[Any], account_id: str) -> StreamRecord:
    (_, id_, name, per_key, unmodified, gb, up_to, at_least, max_bytes, max_age_ms) = row[:10]
    count, size, ins, upd, ncons = row[10:]
    return StreamRecord(
        id=id_,
        name=name,
        account_id=account_id,
        options=StreamOptions(
            one_message_per_key=bool(per_key),
            process_unmodified=bool(unmodified),
            max_storage_gb=gb,
            retain_up_to=up_to,
            retain_at_least=at_least,
            max_bytes=max_bytes,
            max_age_ms=max_age_ms,
        ),
        inserted_at=to_datetime(ins),
        updated_at=to_datetime(upd),
        stats=StreamStats(
            message_count=count,
            consumer_count=ncons,
            storage_size=size,
        ),
    )


CONSUMER_COLUMNS = (
    "c.cid, c.id, c.name, c.stream, s.id, c.filter_key_pattern, c.ack_wait_ms,"
    " c.max_ack_pending, c.max_deliver, c.ephemeral, c.inactive_threshold_ms,"
    " c.inserted_at, c.updated_at"
)
CONSUMER_FROM = " FROM consumers c JOIN streams s ON s.sid = c.stream"


def consumer_meta(row: Sequence[Any]) -> ConsumerMeta:
    cid, id_, name, sid, stream_id, pattern, wait, pending, deliver, eph, threshold = row[:11]
    return ConsumerMeta(
        cid=cid,
        id=id_,
        name=name,
        sid=sid,
        stream_id=stream_id,
        filter_key_pattern=pattern,
        ack_wait_ms=wait,
        max_ack_pending=pending,
        max_deliver=deliver,
        ephemeral=bool(eph),
        inactive_threshold_ms=threshold,
    )


def consumer_record(
    row: Sequence[Any], account_id: str, stats: ConsumerStats | None = None
) -> ConsumerRecord:
    meta = consumer_meta(row)
    return ConsumerRecord(
        id=meta.id,
        name=meta.name,
        stream_id=meta.stream_id,
        account_id=account_id,
        filter_key_pattern=meta.filter_key_pattern,
        ack_wait_ms=meta.ack_wait_ms,
        max_ack_pending=meta.max_ack_pending,
        max_deliver=meta.max_deliver,
        ephemeral=meta.ephemeral,
        inactive_threshold_ms=meta.inactive_threshold_ms,
        inserted_at=to_datetime(row[11]),
        updated_at=to_datetime(row[12]),
        stats=stats,
    )


def parse_ack_ids(cid: int, ack_ids: Sequence[str], *extra: object) -> list[tuple[object, ...]]:
    """``(*extra, cid, seq, token)`` rows for the ack ids that are well formed."""
    rows: list[tuple[object, ...]] = []
    for ack_id in ack_ids:
        seq_text, _, token = ack_id.partition(".")
        if not token:
            continue
        if not seq_text.isascii() or not seq_text.isdigit() or len(seq_text) > 18:
            continue  # not one of ours (and never a number SQLite can't bind)
        rows.append((*extra, cid, int(seq_text), token))
    return rows
