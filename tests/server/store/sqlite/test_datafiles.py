"""Large data in data files (`datafiles`): every read finds it, retention and deleted
streams take the files away, a failing disk stores nothing, older files upgrade."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from streamkit.server.store.base import (
    ConsumerSpec,
    MessageQuery,
    NewMessage,
    StoreFull,
    StreamOptions,
)
from streamkit.server.store.sqlite import datafiles
from streamkit.server.store.sqlite.datafiles import FILE_DATA_CHARS, DataFiles, directory_of
from streamkit.server.store.sqlite.schema import connect
from streamkit.server.store.sqlite.store import SqliteStore
from tests.conformance.helpers import eventually
from tests.faults.integrity import check_db

BIG = "é" * FILE_DATA_CHARS  # 4096 characters, 8192 UTF-8 bytes
ASCII = "a" * FILE_DATA_CHARS


def _messages(n: int, start: int = 0) -> list[NewMessage]:
    """Every third message's data goes to a data file; the others stay in their rows."""
    return [
        {"key": f"k.{i % 2}", "data": f"{i}:" + (BIG if i % 3 == 0 else "small")}
        for i in range(start, start + n)
    ]


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT seq, data, data_file, data_offset, data_bytes FROM messages ORDER BY seq"
        ).fetchall()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    await store.create_stream("s", StreamOptions())
    yield store
    await store.close()


async def test_large_data_lives_in_a_data_file_and_every_read_finds_it(
    store: SqliteStore, tmp_path: Path
) -> None:
    sent = _messages(9)
    await store.publish("s", sent)
    rows = _rows(tmp_path / "s.db")
    in_files = [r for r in rows if r[2] is not None]
    assert [r[0] for r in in_files] == [1, 4, 7]
    assert all(r[1] == "" and r[4] == len(BIG.encode()) + 2 for r in in_files)
    assert all(r[1].endswith("small") and r[2:] == (None, None, None) for r in rows[1:3])

    want = [m["data"] for m in sent]
    forward = await store.read_messages("s", MessageQuery(limit=100))
    backward = await store.read_messages("s", MessageQuery(limit=100, descending=True))
    assert [m["data"] for m in forward] == want
    assert [m["data"] for m in backward] == want[::-1]

    spec = ConsumerSpec(name="c", filter_key_pattern=">", max_deliver=2)
    await store.create_consumer("s", spec)
    first = await store.receive("s", "c", 100)
    assert [d["message"]["data"] for d in first] == want
    await store.nack("s", "c", [d["ack_id"] for d in first], reason="again")
    again = await store.receive("s", "c", 100)  # redelivered: the delivery-row path
    assert [d["message"]["data"] for d in again] == want
    await store.nack("s", "c", [d["ack_id"] for d in again], reason="dead")
    assert await store.receive("s", "c", 100) == []
    dead = await store.dead_letters("s", "c", 100)
    assert [m["data"] for m in dead] == want
    check_db(tmp_path / "s.db").assert_ok()


async def test_the_data_is_synced_before_the_rows_that_refer_to_it_commit(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    visible_at_sync: list[int] = []
    real_sync = os.fdatasync

    def fdatasync(fd: int) -> None:
        with sqlite3.connect(tmp_path / "s.db") as other:
            visible_at_sync.append(other.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        real_sync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    await store.publish("s", _messages(3))
    await store.publish("s", _messages(3, start=3))
    assert visible_at_sync == [0, 3]  # one sync per transaction, each before its commit


async def test_storage_size_counts_file_data_in_bytes_and_trimming_gives_it_back(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.create_stream("s", StreamOptions(retain_up_to=2))
        await store.publish("s", [{"key": "k", "data": BIG}, {"key": "k", "data": "tiny"}])
        record = await store.get_stream("s")
        assert record.stats.storage_size == 2 + len(BIG.encode()) + 4
        await store.publish("s", [{"key": "k", "data": "x"}, {"key": "k", "data": "y"}])
        record = await store.get_stream("s")
        assert record.stats.message_count == 2 and record.stats.storage_size == 4
        per_key = StreamOptions(one_message_per_key=True)
        await store.create_stream("latest", per_key)
        for data in (BIG, BIG + "!", "short", BIG):  # replaced each time
            await store.publish("latest", [{"key": "k", "data": data}])
        record = await store.get_stream("latest")
        assert record.stats.storage_size == 1 + len(BIG.encode())
        (kept,) = await store.read_messages("latest", MessageQuery())
        assert kept["data"] == BIG
        again = await store.publish("latest", [{"key": "k", "data": BIG}])  # unmodified
        assert again.published == 0 and again.acks([{"key": "k", "data": BIG}])[0]["seq"] == 4
    finally:
        await store.close()
    check_db(tmp_path / "s.db").assert_ok()


async def _files_of_two_streams(db: Path) -> list[int]:
    """A store whose streams "trimmed" (keeps 3) and "deleted" each wrote to several
    data files; then "deleted" is deleted. Returns the files there were."""
    store = SqliteStore(db)
    await store.open()
    try:
        store._files.file_bytes = 3 * len(BIG.encode())  # a new file every few messages
        await store.create_stream("trimmed", StreamOptions(retain_up_to=3))
        await store.create_stream("deleted", StreamOptions())
        for i in range(4):
            await store.publish("trimmed", [{"key": "k", "data": f"{i}{BIG}"}] * 3)
            await store.publish("deleted", [{"key": "k", "data": f"{i}{BIG}"}] * 3)
        await store.delete_stream("deleted")
        return DataFiles(db).files()
    finally:
        await store.close()


async def test_the_trimmer_deletes_the_files_retention_and_deleted_streams_left_behind(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    files = await _files_of_two_streams(db)
    assert len(files) >= 8
    store = SqliteStore(db)
    await store.open()  # finishes the purge, then its passes find the files unreferenced
    try:
        left = await eventually(
            lambda: asyncio.to_thread(DataFiles(db).files), lambda f: len(f) <= 2
        )
        kept = await store.read_messages("trimmed", MessageQuery())
        assert [m["data"] for m in kept] == [f"3{BIG}"] * 3
        assert left and set(left) <= set(files)
    finally:
        await store.close()
    check_db(db).assert_ok()


async def test_a_file_goes_only_when_a_second_pass_finds_it_unreferenced(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    files = await _files_of_two_streams(db)
    conn = connect(db, "normal")
    try:
        conn.execute(
            "DELETE FROM messages WHERE stream IN (SELECT sid FROM streams"
            " WHERE name = 'deleted') OR stream NOT IN (SELECT sid FROM streams)"
        )
        referred = {f for (f,) in conn.execute("SELECT DISTINCT data_file FROM messages")}
        collector = DataFiles(db)
        assert collector.collect(conn) == []  # a reader may still be on its way
        removed = collector.collect(conn)
        assert sorted(removed) == sorted(set(files) - referred) and removed
        assert collector.files() == sorted(referred)
        conn.execute("DELETE FROM messages")
        assert collector.collect(conn) == []
        assert collector.collect(conn) == sorted(referred)
    finally:
        conn.close()


async def test_a_write_the_disk_refuses_stores_nothing_and_the_next_one_works(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pwritev = os.pwritev

    def full(fd: int, buffers: Any, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwritev", full)
    with pytest.raises(StoreFull):
        await store.publish("s", _messages(3))
    monkeypatch.setattr(os, "pwritev", real_pwritev)
    store._fault = None  # what recovery does once the disk has room again
    await store.publish("s", _messages(3))
    stored = await store.read_messages("s", MessageQuery())
    assert [m["data"] for m in stored] == [m["data"] for m in _messages(3)]
    assert [m["seq"] for m in stored] == [1, 2, 3]
    check_db(tmp_path / "s.db").assert_ok()


async def test_a_file_of_schema_2_upgrades_and_keeps_its_inline_data(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    # ASCII: inline data counts characters, data in a file bytes; here they agree.
    store = SqliteStore(db)
    await store.open()
    await store.create_stream("s", StreamOptions())
    await store.publish("s", [{"key": "k", "data": ASCII}])  # goes to a data file...
    await store.close()
    with sqlite3.connect(db) as conn:  # ...so make it what a schema-2 server stored
        conn.execute("UPDATE messages SET data = ?", (ASCII,))
        conn.execute("DROP INDEX messages_by_data_file")
        for column in datafiles.FILE_COLUMNS:
            conn.execute(f"ALTER TABLE messages DROP COLUMN {column}")
        conn.execute("UPDATE meta SET v = '2' WHERE k = 'schema_version'")
    for path in directory_of(db).iterdir():
        path.unlink()

    store = SqliteStore(db)
    await store.open()
    try:
        await store.publish("s", [{"key": "k", "data": ASCII + "!"}])
        stored = await store.read_messages("s", MessageQuery())
        assert [m["data"] for m in stored] == [ASCII, ASCII + "!"]
    finally:
        await store.close()
    rows = _rows(db)
    assert rows[0][1:] == (ASCII, None, None, None) and rows[1][1] == ""
    check_db(db).assert_ok()
