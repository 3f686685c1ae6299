"""``data_hash`` is stored only for data in data files: other rows hold ``''`` and the
hash is computed by the reads that send it (``responses.with_data_hash``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from streamkit.server.store.base import MessageQuery, StreamOptions, data_hash
from streamkit.server.store.sqlite.datafiles import FILE_DATA_CHARS
from streamkit.server.store.sqlite.schema import SCHEMA_VERSION
from streamkit.server.store.sqlite.store import SqliteStore
from tests.faults.integrity import check_db

BIG = "é" * FILE_DATA_CHARS


async def test_only_data_in_data_files_has_its_hash_stored(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.create_stream("s", StreamOptions())
        await store.publish("s", [{"key": "k", "data": "small"}, {"key": "k", "data": BIG}])
        small, big = await store.read_messages("s", MessageQuery())
        assert "data_hash" not in small
        assert big["data_hash"] == data_hash(BIG)
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        stored = conn.execute("SELECT data_hash FROM messages ORDER BY seq").fetchall()
    assert stored == [("",), (data_hash(BIG),)]
    check_db(tmp_path / "s.db").assert_ok()  # the data file's bytes match their hash


async def test_a_format_3_file_keeps_its_hashes_and_compaction_compares_by_them(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    await store.open()
    try:
        await store.create_stream("kv", StreamOptions(one_message_per_key=True))
        await store.publish("kv", [{"key": "a", "data": "same"}, {"key": "b", "data": "old"}])
    finally:
        await store.close()
    with sqlite3.connect(db) as conn:  # as a format 3 server wrote it: every row hashed
        conn.execute("UPDATE messages SET data_hash = ? WHERE key = 'a'", (data_hash("same"),))
        conn.execute("UPDATE messages SET data_hash = 'stale' WHERE key = 'b'")
        conn.execute("UPDATE meta SET v = '3' WHERE k = 'schema_version'")
    store = SqliteStore(db)
    await store.open()
    try:
        again = await store.publish("kv", [{"key": "a", "data": "same"}])
        assert again.published == 0  # identical to the kept message, found by its hash
        changed = await store.publish("kv", [{"key": "b", "data": "old"}])
        assert changed.published == 1  # its stored hash is not the data's: not identical
        kept = {m["key"]: m for m in await store.read_messages("kv", MessageQuery())}
        assert kept["a"]["data_hash"] == data_hash("same")
        assert "data_hash" not in kept["b"]
    finally:
        await store.close()
    with sqlite3.connect(db) as conn:
        version = conn.execute("SELECT v FROM meta WHERE k = 'schema_version'").fetchone()
    assert version == (SCHEMA_VERSION,) == ("4",)
