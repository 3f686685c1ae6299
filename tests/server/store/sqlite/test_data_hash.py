"""No row stores ``data_hash``: the reads that send it compute it
(``responses.with_data_hash``). Data in data files has a CRC-32 instead, which each
read checks; files of formats 3 and 4 keep the hashes they stored."""

from __future__ import annotations

import random
import sqlite3
import zlib
from pathlib import Path

import pytest
from zlib_ng import zlib_ng

from streamkit.server.store.base import MessageQuery, StreamOptions, data_hash
from streamkit.server.store.sqlite import crc
from streamkit.server.store.sqlite.datafiles import FILE_DATA_CHARS, DataFileDamaged, directory_of
from streamkit.server.store.sqlite.schema import SCHEMA_VERSION
from streamkit.server.store.sqlite.store import SqliteStore
from tests.faults.integrity import check_db

BIG = "é" * FILE_DATA_CHARS


async def _stored(db: Path, *messages: str, stream: str = "s", per_key: bool = False) -> None:
    store = SqliteStore(db)
    await store.open()
    try:
        await store.create_stream(stream, StreamOptions(one_message_per_key=per_key))
        await store.publish(stream, [{"key": "k", "data": data} for data in messages])
    finally:
        await store.close()


async def _read(db: Path, stream: str = "s") -> list[dict[str, object]]:
    store = SqliteStore(db)
    await store.open()
    try:
        return [dict(m) for m in await store.read_messages(stream, MessageQuery())]
    finally:
        await store.close()


async def test_no_row_stores_a_hash_and_data_in_data_files_has_a_crc(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    await _stored(db, "small", BIG)
    small, big = await _read(db)
    assert "data_hash" not in small and "data_hash" not in big
    assert big["data"] == BIG
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT data_hash, data_crc FROM messages ORDER BY seq").fetchall()
    assert stored == [("", None), ("", zlib.crc32(BIG.encode()))]
    check_db(db).assert_ok()  # the data file's bytes have their crc


def test_with_the_fast_extra_the_crc_is_zlib_ngs_and_the_same_as_zlibs() -> None:
    """Files written by a server with zlib-ng are read by one without it, and back."""
    assert crc.crc32 is zlib_ng.crc32  # the dev extra installs the fast one
    rng = random.Random(7)
    for size in (0, 1, 4095, 4096, 65536, 65537, 1 << 20):
        blob = rng.randbytes(size)
        assert zlib_ng.crc32(blob) == zlib.crc32(blob), size
        assert zlib_ng.crc32(memoryview(blob)[1:]) == zlib.crc32(blob[1:]), size


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
async def test_a_damaged_data_file_fails_the_read_and_says_so(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "s.db"
    await _stored(db, BIG)
    (path,) = directory_of(db).iterdir()
    raw = bytearray(path.read_bytes())
    if damage == "flipped":
        raw[100] ^= 1  # still valid UTF-8: only the checksum can tell
    else:
        raw = raw[:1000]
    path.write_bytes(bytes(raw))
    expected = "fail their checksum" if damage == "flipped" else "ends before byte"
    with pytest.raises(DataFileDamaged, match=expected):
        await _read(db)
    found = "does not match its data_crc" if damage == "flipped" else "ends before byte"
    assert any(found in problem for problem in check_db(db).problems)


async def test_a_format_4_file_keeps_the_hashes_of_its_data_file_rows(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    await store.open()
    try:
        await store.create_stream("kv", StreamOptions(one_message_per_key=True))
        await store.publish("kv", [{"key": "a", "data": BIG}, {"key": "b", "data": BIG}])
    finally:
        await store.close()
    with sqlite3.connect(db) as conn:  # as a format 4 server wrote it: hashes, no crc
        conn.execute("UPDATE messages SET data_crc = NULL, data_hash = ?", (data_hash(BIG),))
        conn.execute("UPDATE messages SET data_hash = 'stale' WHERE key = 'b'")
        conn.execute("UPDATE meta SET v = '4' WHERE k = 'schema_version'")
    a, _ = await _read(db, "kv")
    assert a["data"] == BIG and a["data_hash"] == data_hash(BIG)  # sent as stored
    store = SqliteStore(db)
    await store.open()
    try:  # compaction compares such rows by their stored hash
        assert (await store.publish("kv", [{"key": "a", "data": BIG}])).published == 0
        assert (await store.publish("kv", [{"key": "b", "data": BIG}])).published == 1
    finally:
        await store.close()
    check_db(db).assert_ok()  # "a" is checked by its hash, the new "b" by its crc


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
    assert version == (SCHEMA_VERSION,) == ("5",)
