"""The publish fast path (`appends`): a batch prepared on the event loop and appended
by the writer stores exactly what the message-by-message path stores."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from streamkit.server.store.base import (
    AckRun,
    NewMessage,
    PublishAck,
    PublishResult,
    StreamOptions,
)
from streamkit.server.store.sqlite import writes
from streamkit.server.store.sqlite.appends import PreparedBatch, prepare
from streamkit.server.store.sqlite.datafiles import FILE_DATA_CHARS, DataFiles
from streamkit.server.store.sqlite.rows import MESSAGE_COLUMNS, messages_from_rows, to_datetime
from streamkit.server.store.sqlite.schema import connect
from streamkit.server.store.sqlite.writes import WriteOps

ROW = f"SELECT {MESSAGE_COLUMNS}"


def _ops(tmp_path: Path) -> tuple[sqlite3.Connection, WriteOps]:
    conn = connect(tmp_path / "s.db", "normal")
    ops = WriteOps(dedupe_window_ms=60_000)
    ops.setup(conn)
    return conn, ops


def _placed(tmp_path: Path, sid: int, messages: list[NewMessage]) -> PreparedBatch:
    """``prepare`` d and, when it has large data, placed in a data file as the store's
    data thread does."""
    batch = prepare(sid, messages)
    if batch.blobs:
        files = DataFiles(tmp_path / "s.db")
        batch = batch.placed(files.append(batch.blobs))
        files.sync()
        files.close()
    return batch


def _batch(n: int, prefix: str = "", shape: str = "plain") -> list[NewMessage]:
    batch: list[NewMessage] = []
    for i in range(n):
        data = f"{prefix}data {i} é"
        if shape == "large" and i % 3 == 1:  # some data goes to a data file, some not
            data += "€" * FILE_DATA_CHARS
        m: NewMessage = {"key": f"k.{i % 3}", "data": data}
        if i % 4:
            m["id"] = f"{prefix}id-{i}"
        if shape in ("headers", "both"):
            m["headers"] = {"content-type": "application/json", "n": str(i)}
        if shape in ("encoding", "both"):
            m["encoding"] = "utf-8"
        batch.append(m)
    return batch


def test_prepare_sends_mixed_batches_and_repeated_ids_down_the_general_path() -> None:
    plain = prepare(1, _batch(5))
    assert plain.values is not None and len(plain.values) == 5 * 4
    assert plain.size == sum(len(m["key"]) + len(m["data"]) for m in _batch(5))
    assert [k is None for k in plain.id_keys] == [True, False, False, False, True]
    for shape, width in (("headers", 5), ("encoding", 5), ("both", 6)):
        values = prepare(1, _batch(5, shape=shape)).values
        assert values is not None and len(values) == 5 * width, shape
    mixed: list[NewMessage] = [*_batch(3), {"key": "k", "data": "d", "headers": {"a": "b"}}]
    twice: list[NewMessage] = [
        {"key": "k", "data": "1", "id": "x"},
        {"key": "k", "data": "2", "id": "x"},
    ]
    assert prepare(1, mixed).values is None
    assert prepare(1, _batch(2, shape="headers") + _batch(1, "x", shape="both")).values is None
    assert prepare(1, twice).values is None


@pytest.mark.parametrize("shape", ["plain", "headers", "encoding", "both", "large"])
@pytest.mark.parametrize("size", [1, 2, 3, 63, 64, 65, 127, 200, 1000])
def test_an_appended_batch_stores_the_rows_the_general_path_stores(
    size: int, shape: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(writes, "now_us", lambda: 1_700_000_000_000_000)
    conn, ops = _ops(tmp_path)
    fast, _ = ops.create_stream(conn, "fast", StreamOptions())
    slow, _ = ops.create_stream(conn, "slow", StreamOptions())
    ops.publish(conn, fast.sid, prepare(fast.sid, _batch(7, "before ")))
    ops.publish(conn, slow.sid, prepare(slow.sid, _batch(7, "before ")))
    batch = _batch(size, shape=shape)
    appended = ops.publish(conn, fast.sid, _placed(tmp_path, fast.sid, batch))
    one_by_one = ops.publish(
        conn, slow.sid, replace(_placed(tmp_path, slow.sid, batch), values=None)
    )
    assert appended.acks is None and one_by_one.acks is not None  # the two paths were taken

    def stored(sid: int) -> list[Any]:
        rows = conn.execute(ROW + " FROM messages WHERE stream = ? ORDER BY seq", (sid,))
        return messages_from_rows(conn, rows.fetchall(), "s")  # each read from its own place

    def stream(sid: int) -> Any:
        sql = "SELECT last_seq, message_count, storage_size FROM streams WHERE sid = ?"
        return conn.execute(sql, (sid,)).fetchone()

    assert stored(fast.sid) == stored(slow.sid)
    assert stream(fast.sid) == stream(slow.sid) == (7 + size, 7 + size, stream(slow.sid)[2])
    run = AckRun(appended.first_seq, size, to_datetime(appended.stored_us))
    assert PublishResult(size, [run]).acks(batch) == one_by_one.acks


def test_an_id_the_window_knows_is_acked_with_its_first_seq_not_stored_again(
    tmp_path: Path,
) -> None:
    conn, ops = _ops(tmp_path)
    meta, _ = ops.create_stream(conn, "orders", StreamOptions())
    conn.execute("BEGIN")
    first = ops.publish(conn, meta.sid, prepare(meta.sid, _batch(8)))
    again = ops.publish(conn, meta.sid, prepare(meta.sid, _batch(8)[5:6] + _batch(2, "new ")))
    conn.execute("COMMIT")
    ops.commit()
    after = ops.publish(conn, meta.sid, prepare(meta.sid, _batch(8)[1:2]))
    assert first.acks is None and first.published == 8
    assert again.acks is not None and again.published == 2  # seen in the same transaction
    assert [a["seq"] for a in again.acks] == [6, 9, 10]
    assert after.published == 0 and after.acks == [
        {"id": "id-1", "seq": 2, "committed": again.acks[0]["committed"]}
    ]


def test_a_publish_result_keeps_per_message_acks_as_runs() -> None:
    t0, t1 = to_datetime(1_000_000), to_datetime(2_000_000)
    acks: list[PublishAck] = [
        {"id": "a", "seq": 5, "committed": t1},
        {"id": None, "seq": 6, "committed": t1},
        {"id": "b", "seq": 2, "committed": t0},  # seen before
        {"id": "c", "seq": 7, "committed": t1},
        {"id": "d", "seq": 8, "committed": t1},
        {"id": "e", "seq": 9, "committed": t0},  # another commit time breaks a run too
    ]
    result = PublishResult.of_acks(4, acks)
    assert result.runs == [(5, 2, t1), (2, 1, t0), (7, 2, t1), (9, 1, t0)]
    messages: list[NewMessage] = [{"key": "k", "data": "", "id": a["id"]} for a in acks]
    assert result.acks(messages) == acks
