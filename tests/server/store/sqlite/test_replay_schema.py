"""What replay and dead letters changed in the SQLite schema: the first message at or
after a time is a binary search over seq (files with the former time index drop it),
and ``deliveries.last_error``, on new files and on files created before it."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest

from streamkit.server.engines import create_store
from streamkit.server.runner import start_server
from streamkit.server.store.base import StreamOptions
from streamkit.server.store.sqlite import writes
from streamkit.server.store.sqlite.appends import prepare
from streamkit.server.store.sqlite.reads import _NEXT_STORED, _SEQ_RANGE, first_seq_at
from streamkit.server.store.sqlite.schema import connect, create_schema
from streamkit.server.store.sqlite.writes import WriteOps
from tests.http_api import Api, msgs


async def _publish_and_read(db: Path, *names: str) -> list[str]:
    """Start a server over ``db``, publish ``names`` to "orders" and read them back by
    the ``inserted_at`` of the first one."""
    running = await start_server(create_store("sqlite", db=db))
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, running.url)
            status, _ = await api.call("GET", "/api/streams/orders")
            if status == 404:
                await api.stream("orders")
            acks = (await api.publish("orders", msgs(*names)))["acks"]
            first = (await api.read(after_seq=acks[0]["seq"] - 1, limit=1))[0]
            found = await api.read(from_time=first["inserted_at"])
            return [m["key"] for m in found]
    finally:
        await running.close()


def _indexes(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    return {r[0] for r in rows}


async def test_a_file_with_the_old_time_index_drops_it_when_opened(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    assert await _publish_and_read(db, "a", "b") == ["a", "b"]
    with sqlite3.connect(db) as conn:  # as a file written by an earlier streamkit
        conn.execute("CREATE INDEX messages_by_time ON messages (stream, inserted_at)")
    assert await _publish_and_read(db, "c", "d") == ["c", "d"]
    assert "messages_by_time" not in _indexes(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _stream_of(stamps: dict[int, int]) -> sqlite3.Connection:
    """An in-memory database whose stream 1 holds seq -> updated_at ``stamps``."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    create_schema(conn)
    conn.executemany(
        "INSERT INTO messages (stream, seq, key, data, data_hash, inserted_at, updated_at)"
        " VALUES (1, ?, 'k', 'x', '', ?, ?)",
        [(seq, at, at) for seq, at in stamps.items()],
    )
    conn.executemany(  # streams on either side, earlier and later: never an answer
        "INSERT INTO messages (stream, seq, key, data, data_hash, inserted_at, updated_at)"
        " VALUES (?, 1, 'k', 'x', '', ?, ?)",
        [(0, 0, 0), (2, 10**15, 10**15)],
    )
    return conn


@pytest.mark.parametrize("seed", range(20))
def test_first_seq_at_is_the_first_stored_at_or_after(seed: int) -> None:
    rng = random.Random(seed)
    stamps: dict[int, int] = {}
    seq, at = rng.randint(1, 50), 1_000_000
    for _ in range(rng.randint(0, 300)):
        stamps[seq] = at
        seq += rng.choice((1, 1, 1, 2, 40))  # gaps: trimmed or replaced messages
        at += rng.choice((0, 0, 1, 7, 1000))  # one batch shares a time
    conn = _stream_of(stamps)
    probes = [*stamps.values(), 0, 999_999, at + 1, *(v + 1 for v in stamps.values())]
    for probe in probes:
        expected = min((s for s, a in stamps.items() if a >= probe), default=None)
        when = datetime.fromtimestamp(probe / 1e6, timezone.utc)
        assert first_seq_at(conn, 1, when) == expected, (probe, stamps)


@pytest.mark.parametrize(("sql", "args"), [(_SEQ_RANGE, {"sid": 1}), (_NEXT_STORED, (1, 1))])
def test_each_step_of_the_search_is_a_primary_key_seek(
    sql: str, args: dict[str, int] | tuple[int, int]
) -> None:
    conn = _stream_of({1: 5})
    plan = " | ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
    assert "SEARCH messages USING PRIMARY KEY" in plan, plan
    assert "SCAN messages" not in plan and "TEMP B-TREE" not in plan, plan


async def test_a_file_from_before_last_error_gets_the_column(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    assert await _publish_and_read(db, "a") == ["a"]
    with sqlite3.connect(db) as conn:  # as a file written by an older streamkit
        conn.execute("ALTER TABLE deliveries DROP COLUMN last_error")
    running = await start_server(create_store("sqlite", db=db))
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, running.url)
            await api.consumer(max_deliver=1)
            (item,) = await api.receive()
            await api.settle("nack", [item["ack_id"]], reason="boom")  # type: ignore[arg-type]
            dead = await api.ok("GET", "/api/streams/orders/consumers/billing/dead")
            assert [(m["seq"], m["last_error"]) for m in dead["data"]] == [(1, "boom")]
    finally:
        await running.close()


def test_a_clock_stepped_back_does_not_store_a_message_earlier_than_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    ops = WriteOps(dedupe_window_ms=60_000)
    ops.setup(conn)
    meta, _ = ops.create_stream(conn, "orders", StreamOptions())
    clock = iter([5_000_000, 2_000_000])  # the second publish sees the clock stepped back
    monkeypatch.setattr(writes, "now_us", lambda: next(clock))
    ops.publish(conn, meta.sid, prepare(meta.sid, [{"key": "a", "data": "1"}]))
    ops.publish(conn, meta.sid, prepare(meta.sid, [{"key": "b", "data": "2"}]))
    stored = conn.execute("SELECT seq, updated_at FROM messages ORDER BY seq").fetchall()
    assert stored == [(1, 5_000_000), (2, 5_000_000)]
    when = datetime.fromtimestamp(3.0, timezone.utc)
    assert first_seq_at(conn, meta.sid, when) == 1


def test_deleted_content_is_zeroed_only_where_that_costs_no_io(tmp_path: Path) -> None:
    """``secure_delete = FAST`` on every connection: Debian builds SQLite with it on,
    which doubles the writes of retention, stream purges and acks."""
    for readonly in (False, True):
        conn = connect(tmp_path / "s.db", "normal", readonly=readonly)
        try:
            assert conn.execute("PRAGMA secure_delete").fetchone() == (2,)
        finally:
            conn.close()
