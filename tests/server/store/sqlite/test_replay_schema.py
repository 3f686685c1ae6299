"""What replay and dead letters added to the SQLite schema: the insert-time index (the
first message at or after a time is one seek) and ``deliveries.last_error``, on new
files and on files created before them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiohttp

from streamkit.server.engines import create_store
from streamkit.server.runner import start_server
from streamkit.server.store.sqlite.reads import FIRST_SEQ_AT
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


async def test_a_file_from_before_the_index_gets_it_when_opened(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    assert await _publish_and_read(db, "a", "b") == ["a", "b"]
    with sqlite3.connect(db) as conn:  # as a file written by an older streamkit
        conn.execute("DROP INDEX messages_by_time")
    assert "messages_by_time" not in _indexes(db)
    assert await _publish_and_read(db, "c", "d") == ["c", "d"]
    assert "messages_by_time" in _indexes(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_the_lookup_is_an_index_seek_not_a_scan(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    assert await _publish_and_read(db, "a") == ["a"]
    with sqlite3.connect(db) as conn:
        plan = " | ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + FIRST_SEQ_AT, (1, 0)))
    assert "SEARCH messages USING" in plan and "messages_by_time" in plan, plan
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan


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
