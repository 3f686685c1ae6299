"""Appending a publish batch to a stream, split so the writer holds the GIL briefly.

The writer thread is the one place that stores anything, and its Python work
competes for the GIL with the event loop parsing the next requests. So a batch
is made ready on the event loop first (`prepare`): each message's data hash,
its dedupe-window key, its column values and its size, nothing that depends
on the stream's state. The writer (`append`) then only checks the window, takes
the next seqs and stores the rows 64 to a statement, each row's seq an offset
from one bound parameter, while SQLite's own work runs without the GIL. The
acks are built back on the event loop (`PreparedBatch.acks`).

A batch that is not plain (headers, an encoding, an id given twice) or that
holds an id the window already has takes the general, message-by-message path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from streamkit.server.store.base import NewMessage, PublishAck, data_hash
from streamkit.server.store.sqlite.dedupe import DedupeWindow
from streamkit.server.store.sqlite.rows import to_datetime

_COLUMNS = 4
"""Values bound per row: key, data, data_hash, msg_id (stream, seq and times are shared)."""
_CHUNKS = (64, 32, 16, 8, 4, 2, 1)
"""Rows per INSERT statement, largest first: seven statements store any batch."""


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A publish batch as `prepare` made it ready for `append`."""

    messages: Sequence[NewMessage]
    id_keys: list[int | None]
    """Each message's dedupe-window key (None: it has no id)."""
    values: list[object] | None
    """Key, data, data hash and id of each message in a row; None when the batch
    is not plain (headers, an encoding, or an id twice) and takes the general path."""
    size: int
    """Key and data characters of the batch (what `storage_size` counts)."""

    def acks(self, first_seq: int, stored_us: int) -> list[PublishAck]:
        """The acks of a batch `append` stored from ``first_seq`` on, at ``stored_us``."""
        committed = to_datetime(stored_us)
        return [
            {"id": m.get("id"), "seq": seq, "committed": committed}
            for seq, m in enumerate(self.messages, first_seq)
        ]


def prepare(sid: int, messages: Sequence[NewMessage]) -> PreparedBatch:
    """Everything about publishing ``messages`` to stream ``sid`` that needs no lock."""
    window_key = DedupeWindow.key
    id_keys: list[int | None] = []
    values: list[object] | None = []
    size = 0
    for m in messages:
        key, data, msg_id = m["key"], m["data"], m.get("id")
        id_keys.append(None if msg_id is None else window_key(sid, msg_id))
        size += len(key) + len(data)
        if values is not None:
            if m.get("headers") or m.get("encoding"):
                values = None
            else:
                values += (key, data, data_hash(data), msg_id)
    keyed = [k for k in id_keys if k is not None]
    if len(set(keyed)) != len(keyed):
        values = None
    return PreparedBatch(messages, id_keys, values, size)


@cache
def _insert_sql(rows: int) -> str:
    # ?1 stream, ?2 the first row's seq, ?3 the time; then each row's values.
    cells = [
        f"(?1, ?2 + {i}, ?{4 + i * _COLUMNS}, ?{5 + i * _COLUMNS}, ?{6 + i * _COLUMNS},"
        f" ?{7 + i * _COLUMNS}, ?3, ?3)"
        for i in range(rows)
    ]
    return (
        "INSERT INTO messages (stream, seq, key, data, data_hash, msg_id, inserted_at,"
        " updated_at) VALUES " + ", ".join(cells)
    )


def append(
    conn: sqlite3.Connection, sid: int, first_seq: int, stored_us: int, values: list[object]
) -> None:
    """Store a plain batch's rows (`PreparedBatch.values`) from ``first_seq`` on."""
    rows, done = len(values) // _COLUMNS, 0
    for chunk in _CHUNKS:
        while rows - done >= chunk:
            head: list[object] = [sid, first_seq + done, stored_us]
            conn.execute(
                _insert_sql(chunk), head + values[done * _COLUMNS : (done + chunk) * _COLUMNS]
            )
            done += chunk
