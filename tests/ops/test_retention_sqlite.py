"""Retention on the SQLite engine: bounded trim steps, skipped counts, the byte floor,
files created before retention existed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from streamkit.server.store.base import NewMessage, StreamOptions
from streamkit.server.store.sqlite import retention
from streamkit.server.store.sqlite import store as store_module
from streamkit.server.store.sqlite.rows import now_us
from streamkit.server.store.sqlite.schema import SCHEMA_VERSION, connect, create_schema
from streamkit.server.store.sqlite.store import SqliteStore
from streamkit.testing import ServerHandle
from tests.conformance.helpers import eventually
from tests.faults.integrity import check_db
from tests.http_api import Api


def _batch(n: int, key: str = "orders.eu", data: str = "d") -> list[dict[str, Any]]:
    return [{"key": key, "data": data} for _ in range(n)]


async def _count(api: Api, stream: str = "orders") -> int:
    body = await api.ok("GET", f"/api/streams/{stream}")
    count: int = body["stats"]["message_count"]
    return count


async def test_trim_steps_are_bounded(tmp_path: Path) -> None:
    """A limit lowered far below what is stored is trimmed in steps of at most the budget."""
    db = tmp_path / "streamkit.db"
    store = SqliteStore(db)
    await store.open()
    try:
        await store.create_stream("orders", StreamOptions())
        for _ in range(20):
            await store.publish("orders", [{"key": "k", "data": "d"}] * 1000)
    finally:
        await store.close()
    conn = connect(db, "normal")
    try:
        conn.execute("UPDATE streams SET retain_up_to = 10")
        steps = []
        while True:
            conn.execute("BEGIN IMMEDIATE")
            step = retention.trim(conn, 1, 500, now_us())
            conn.execute("COMMIT")
            steps.append(step.removed)
            if not step.more:
                break
            assert len(steps) < 100
        assert max(steps) == 500 and sum(steps) == 19_990
        assert len(steps) == 40
        count, first = conn.execute("SELECT COUNT(*), MIN(seq) FROM messages").fetchone()
        assert (count, first) == (10, 19_991)
        assert conn.execute("SELECT message_count FROM streams").fetchone() == (10,)
    finally:
        conn.close()


async def test_the_trimmer_catches_up_in_the_background(api: Api, server: ServerHandle) -> None:
    """Far more than one step to trim (a lowered limit), publishes still answered meanwhile."""
    await api.stream("orders")
    for _ in range(3 * retention.TRIM_BATCH // 1000 + 2):
        await api.publish("orders", _batch(1000))
    await api.ok("PATCH", "/api/streams/orders", {"retain_up_to": 100})
    published = await api.publish("orders", _batch(10))
    assert published["published"] == 10
    assert await eventually(lambda: _count(api), lambda n: n == 100, timeout=20) == 100


async def test_skipped_counts_what_a_consumer_lost(api: Api) -> None:
    await api.stream("orders", retain_up_to=10)
    await api.consumer(name="billing")
    await api.consumer(name="eu", pattern="orders.eu")
    await api.publish("orders", _batch(10))  # seqs 1..10, all orders.eu
    held = await api.receive(batch_size=4)  # 1..4 in flight for billing
    assert [d["message"]["seq"] for d in held] == [1, 2, 3, 4]
    await api.publish("orders", _batch(10, key="orders.us"))  # 11..20; 1..10 go
    await api.publish("orders", _batch(10))  # 21..30; 11..20 go

    billing = await api.stats(consumer="billing")
    # 4 in flight vanished, 5..20 never delivered: 20 lost, none in flight any more.
    assert billing == {"pending": 10, "in_flight": 0, "dead": 0, "skipped": 20}
    eu = await api.stats(consumer="eu")
    # Only the orders.eu messages count for a consumer filtering on them: 1..10.
    assert eu == {"pending": 10, "in_flight": 0, "dead": 0, "skipped": 10}

    await api.ack([d["ack_id"] for d in held])  # unknown now: ignored
    got = await api.receive(batch_size=100)
    assert [d["message"]["seq"] for d in got] == list(range(21, 31))
    await api.ack([d["ack_id"] for d in got])
    assert await api.stats(consumer="billing") == {
        "pending": 0,
        "in_flight": 0,
        "dead": 0,
        "skipped": 20,
    }


async def test_byte_limit_never_trims_below_retain_at_least(api: Api) -> None:
    await api.stream("orders", max_bytes=1000, retain_at_least=5)
    await api.publish("orders", _batch(10, data="x" * 500))
    body = await api.ok("GET", "/api/streams/orders")
    assert body["stats"]["message_count"] == 5
    assert body["stats"]["storage_size"] == 5 * (len("orders.eu") + 500)
    assert [m["seq"] for m in await api.read()] == [6, 7, 8, 9, 10]


async def test_max_storage_gb_and_max_bytes_the_smaller_wins(api: Api) -> None:
    await api.stream("orders", max_storage_gb=1, max_bytes=5000)
    await api.publish("orders", _batch(20, data="x" * 991))  # 1000 bytes each
    assert await _count(api) == 5


async def test_one_message_per_key_stream_forgets_trimmed_keys(api: Api) -> None:
    await api.stream("kv", one_message_per_key=True, retain_up_to=2)
    await api.publish("kv", [{"key": f"k.{i}", "data": "v"} for i in range(5)])
    assert [m["key"] for m in await api.read("kv")] == ["k.3", "k.4"]
    # k.0 was trimmed: publishing it again stores it anew (no stale latest_by_key row).
    again = await api.publish("kv", [{"key": "k.0", "data": "v"}])
    assert again["published"] == 1
    assert [m["key"] for m in await api.read("kv")] == ["k.4", "k.0"]


def _messages(n: int) -> list[NewMessage]:
    return [{"key": "orders.eu", "data": "d"} for _ in range(n)]


def _stored(db: Path) -> dict[int, int]:
    """Messages in the file per stream id, deleted streams included."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT stream, COUNT(*) FROM messages GROUP BY stream"))
    finally:
        conn.close()


async def test_a_deleted_streams_messages_go_in_bounded_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delete itself takes no message; trimmer steps of the budget take them all, while
    a stream of the same name, created meanwhile, keeps its own."""
    steps: list[int] = []

    def purge(conn: sqlite3.Connection, sid: int, budget: int) -> int:
        steps.append(removed := real_purge(conn, sid, budget))
        return removed

    real_purge = retention.purge
    monkeypatch.setattr(retention, "TRIM_BATCH", 1_000)
    monkeypatch.setattr(retention, "purge", purge)
    monkeypatch.setattr(store_module, "TRIM_INTERVAL", 3600.0)  # no pass of its own
    db = tmp_path / "streamkit.db"
    store = SqliteStore(db)
    await store.open()
    try:
        await store.create_stream("orders", StreamOptions())
        await store.create_stream("other", StreamOptions())
        for _ in range(5):
            await store.publish("orders", _messages(1_000))
        await store.publish("other", _messages(10))
        store._trim_now = asyncio.Event()  # not the one the trimmer waits on
        await store.delete_stream("orders")
        assert _stored(db) == {1: 5_000, 2: 10}
        await store.create_stream("orders", StreamOptions())
        await store.publish("orders", _messages(3))
        await store._trim_pass()  # what the trimmer runs
        assert steps == [1_000] * 5 + [0]
        assert _stored(db) == {2: 10, 3: 3}
        assert (await store.get_stream("orders")).stats.message_count == 3
    finally:
        await store.close()


async def test_what_a_crash_left_of_a_deleted_stream_goes_after_restart(tmp_path: Path) -> None:
    """Messages of a stream id no longer in the catalog (a purge cut short) are removed by
    the trimmer of the next server to open the file."""
    db = tmp_path / "streamkit.db"
    store = SqliteStore(db)
    await store.open()
    try:
        await store.create_stream("orders", StreamOptions())
        await store.create_stream("gone", StreamOptions())
        await store.publish("orders", _messages(20))
        await store.publish("gone", _messages(2_500))
    finally:
        await store.close()
    conn = connect(db, "normal")
    conn.execute("DELETE FROM streams WHERE name = 'gone'")  # as a delete leaves it
    conn.close()
    assert _stored(db) == {1: 20, 2: 2_500}
    found = check_db(db)
    found.assert_ok()  # the faults suite's check: a purge under way is no fault
    assert (found.messages, found.purging) == (20, 2_500)
    store = SqliteStore(db)
    await store.open()
    try:
        left = await eventually(
            lambda: asyncio.sleep(0, _stored(db)), lambda by_sid: 2 not in by_sid, timeout=10
        )
        assert left == {1: 20}
        assert (await store.get_stream("orders")).stats.message_count == 20
    finally:
        await store.close()


def test_messages_of_a_stream_id_never_given_out_are_a_fault(tmp_path: Path) -> None:
    db = tmp_path / "streamkit.db"
    conn = connect(db, "normal")
    create_schema(conn)
    conn.execute(
        "INSERT INTO messages (stream, seq, key, data, data_hash, inserted_at, updated_at)"
        " VALUES (7, 1, 'k', 'd', 'h', 0, 0)"
    )
    conn.close()
    assert check_db(db).problems == ["1 messages of stream ids never given out"]


@pytest.mark.parametrize("spins", [0, 1, 2])
async def test_the_trimmer_s_wait_ends_cancelled_when_its_event_fires_as_it_is_cancelled(
    spins: int,
) -> None:
    """``asyncio.wait_for(event.wait(), ...)`` (Python 3.11) returned normally instead:
    a store closed just after a stream was deleted waited for its trimmer for good."""
    event = asyncio.Event()
    waiting = asyncio.create_task(store_module._wait(event, 10))
    await asyncio.sleep(0)
    event.set()
    for _ in range(spins):
        await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_file_from_before_retention_opens_and_trims(tmp_path: Path) -> None:
    """Version-1 files lack the new columns; opening adds them."""
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(
        """
        CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1'), ('account_id', 'acc');
        CREATE TABLE streams (
            sid INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL UNIQUE, one_message_per_key INTEGER NOT NULL,
            process_unmodified INTEGER NOT NULL, max_storage_gb INTEGER, retain_up_to INTEGER,
            retain_at_least INTEGER, last_seq INTEGER NOT NULL DEFAULT 0,
            message_count INTEGER NOT NULL DEFAULT 0, storage_size INTEGER NOT NULL DEFAULT 0,
            inserted_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
        CREATE TABLE consumers (
            cid INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
            stream INTEGER NOT NULL, name TEXT NOT NULL, filter_key_pattern TEXT NOT NULL,
            ack_wait_ms INTEGER NOT NULL, max_ack_pending INTEGER NOT NULL, max_deliver INTEGER,
            ephemeral INTEGER NOT NULL, inactive_threshold_ms INTEGER, cursor INTEGER NOT NULL,
            outstanding INTEGER NOT NULL DEFAULT 0, inserted_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL, UNIQUE (stream, name));
        INSERT INTO streams (id, name, one_message_per_key, process_unmodified, retain_up_to,
            inserted_at, updated_at) VALUES ('s1', 'orders', 0, 0, 3, 0, 0);
        """
    )
    conn.commit()
    conn.close()
    store = SqliteStore(db)
    await store.open()
    try:
        await store.publish("orders", [{"key": "k", "data": "d"}] * 10)
        record = await store.get_stream("orders")
        assert record.stats.message_count == 3
        assert record.options.retain_up_to == 3 and record.options.max_bytes is None
    finally:
        await store.close()
    with sqlite3.connect(db) as conn:  # brought up to this format: an older server refuses it
        version = conn.execute("SELECT v FROM meta WHERE k = 'schema_version'").fetchone()
    assert version == (SCHEMA_VERSION,) and SCHEMA_VERSION != "1"


async def test_a_file_from_a_newer_server_is_refused_with_its_version(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    store = SqliteStore(db)
    await store.open()
    await store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET v = '99' WHERE k = 'schema_version'")
    store = SqliteStore(db)
    with pytest.raises(sqlite3.DatabaseError, match=r"schema version '99'.*newer streamkit"):
        await store.open()
