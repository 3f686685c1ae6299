"""Appending a publish batch to a stream, split so the writer holds the GIL briefly.

The writer thread is the one place that stores rows, and its Python work
competes for the GIL with the event loop parsing the next requests. So a batch
is made ready on the event loop first (`prepare`): each message's dedupe-window
key, its column values and its size, nothing that depends on the stream's state.
The writer (`append`) then only checks the window, takes the next seqs and stores
the rows 64 to a statement, each row's seq an offset from one bound parameter,
while SQLite's own work runs without the GIL. It answers with the first seq: the
acks are one run, built back on the event loop.

Large data (`datafiles.FILE_DATA_CHARS`) is encoded once, here, for its data file
(`PreparedBatch.blobs`); the store has the data thread write it (`datawriter`)
and gives the batch its places (`PreparedBatch.placed`) before the writer sees it.

A batch whose messages differ in shape (some with headers or an encoding,
some without), that gives an id twice, or that holds an id the window
already has takes the general, message-by-message path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache

import orjson

from streamkit.server.store.base import NewMessage, data_text, data_utf8
from streamkit.server.store.sqlite.datafiles import FILE_DATA_CHARS, Blob, Place, with_places
from streamkit.server.store.sqlite.dedupe import DedupeWindow, IdRange, id_range

_SHAPES = {
    (False, False): ("key", "data", "data_hash", "msg_id"),
    (True, False): ("key", "data", "data_hash", "msg_id", "headers"),
    (False, True): ("key", "data", "data_hash", "msg_id", "encoding"),
    (True, True): ("key", "data", "data_hash", "msg_id", "headers", "encoding"),
}
"""The columns bound per row, by (has headers, has an encoding): a column left out is
NULL, which is cheaper than binding None (sqlite3 looks for an adapter for each)."""
FULL_COLUMNS = _SHAPES[(True, True)]
"""Every column a row can have (the general path binds None for those it lacks)."""
_CHUNKS = (64, 32, 16, 8, 4, 2, 1)
"""Rows per INSERT statement, largest first: seven statements store any batch."""


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A publish batch as `prepare` made it ready for `append`."""

    messages: Sequence[NewMessage]
    id_keys: list[int | None]
    """Each message's dedupe-window key (None: it has no id)."""
    id_range: IdRange | None
    """The least and greatest id of the batch (None: no message has one)."""
    columns: tuple[str, ...]
    """The columns `values` holds for each row."""
    values: list[object] | None
    """The ``columns`` of each message, row after row; None when the messages
    differ in shape or an id comes twice: the batch takes the general path."""
    size: int
    """What the batch adds to `storage_size` (`datafiles.accounted_size`)."""
    blobs: list[Blob]
    """The UTF-8 data of the messages whose data goes to a data file, in order."""
    places: list[Place | None] | None = None
    """Where each message's data went (None: inline); None until `placed`."""

    def place_of(self, index: int) -> Place | None:
        """Where message ``index``'s data went (None: it stays in its row)."""
        return None if self.places is None else self.places[index]

    def placed(self, places: Sequence[Place]) -> PreparedBatch:
        """This batch once its `blobs` are in data files, at ``places``."""
        where = iter(places)
        return replace(
            self,
            places=[
                next(where) if len(m["data"]) >= FILE_DATA_CHARS else None for m in self.messages
            ],
        )


def prepare(sid: int, messages: Sequence[NewMessage]) -> PreparedBatch:
    """Everything about publishing ``messages`` to stream ``sid`` that needs no lock."""
    msg_ids: list[str | None] = []
    blobs: list[Blob] = []
    values: list[object] | None = []
    size = 0
    first = messages[0] if messages else None
    shape = (bool(first.get("headers")), bool(first.get("encoding"))) if first else (False, False)
    for m in messages:
        key, data, msg_id = m["key"], m["data"], m.get("id")
        msg_ids.append(msg_id)
        if len(data) < FILE_DATA_CHARS:
            if type(data) is not str:
                data = data_text(data)
            size += len(key) + len(data)
        else:
            blobs.append(raw := data_utf8(data))
            size += len(key) + len(raw)  # `datafiles.accounted_size`
            data = ""  # its row's data (`with_places` adds where it went)
        if values is None:
            continue
        headers, encoding = m.get("headers"), m.get("encoding")
        if (bool(headers), bool(encoding)) != shape:
            values = None
            continue
        values += (key, data, "", msg_id)  # no data_hash is stored (`schema`)
        if headers:
            values.append(headers_column(headers))
        if encoding:
            values.append(encoding)
    id_keys = DedupeWindow.keys(sid, msg_ids)
    keyed = [k for k in id_keys if k is not None]
    if len(set(keyed)) != len(keyed):
        values = None
    return PreparedBatch(messages, id_keys, id_range(msg_ids), _SHAPES[shape], values, size, blobs)


def full_row(message: NewMessage) -> list[object]:
    """``message``'s `FULL_COLUMNS` values (the general path's rows)."""
    data = message["data"]
    return [
        message["key"],
        data_text(data) if len(data) < FILE_DATA_CHARS else "",  # else as in `prepare`
        "",
        message.get("id"),
        headers_column(message.get("headers")),
        message.get("encoding"),
    ]


def insert_kept(
    conn: sqlite3.Connection,
    sid: int,
    seq: int,
    inserted_us: int,
    stored_us: int,
    values: list[object],
    place: Place | None,
) -> None:
    """Store a one_message_per_key stream's new message (`FULL_COLUMNS` ``values``, its
    data at ``place`` when in a data file): it keeps its key's first version's
    ``inserted_us``."""
    columns, values = with_places(FULL_COLUMNS, values, [place])
    conn.execute(_kept_sql(columns), [sid, seq, *values, inserted_us, stored_us])


@cache
def _kept_sql(columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" * (len(columns) + 4))
    return (
        f"INSERT INTO messages (stream, seq, {', '.join(columns)}, inserted_at, updated_at)"
        f" VALUES ({marks})"
    )


def headers_column(headers: dict[str, str] | None) -> str | None:
    """What the ``headers`` column stores: the headers as JSON, NULL when there are none."""
    return orjson.dumps(headers).decode() if headers else None


@cache
def _insert_sql(columns: tuple[str, ...], rows: int) -> str:
    # ?1 stream, ?2 the first row's seq, ?3 the time; then each row's values.
    width = len(columns)
    cells = [
        "(?1, ?2 + {}, {}, ?3, ?3)".format(
            i, ", ".join(f"?{4 + i * width + c}" for c in range(width))
        )
        for i in range(rows)
    ]
    return (
        f"INSERT INTO messages (stream, seq, {', '.join(columns)}, inserted_at, updated_at)"
        " VALUES " + ", ".join(cells)
    )


def append(
    conn: sqlite3.Connection,
    sid: int,
    first_seq: int,
    stored_us: int,
    columns: tuple[str, ...],
    values: list[object],
    places: Sequence[Place | None] | None,
) -> None:
    """Store rows of ``columns`` (`PreparedBatch.values`, or rows built alike) with
    consecutive seqs from ``first_seq`` on, all stored at ``stored_us``; ``places``
    says where each row's data went when in a data file."""
    columns, values = with_places(columns, values, places)
    width = len(columns)
    rows, done = len(values) // width, 0
    for chunk in _CHUNKS:
        while rows - done >= chunk:
            head: list[object] = [sid, first_seq + done, stored_us]
            conn.execute(
                _insert_sql(columns, chunk),
                head + values[done * width : (done + chunk) * width],
            )
            done += chunk
