"""Server bugs the fault tests found, each pinned by the smallest request that showed it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from streamkit.testing import run_server

from .integrity import check_db


async def test_compaction_keeps_storage_size_exact_with_nul_characters(tmp_path: Path) -> None:
    """A one_message_per_key stream subtracted the replaced message's size with SQL's
    length(), which stops at the first NUL: storage_size drifted upward for ever."""
    async with run_server(tmp_path / "nul.db") as server, aiohttp.ClientSession() as http:
        body = {"name": "k", "one_message_per_key": True}
        async with http.post(f"{server.url}/api/streams", json=body) as r:
            assert r.status == 201
        for data in ["x\x00yyyy", "z", "\x00\x00\x00", "q"]:
            body = {"messages": [{"key": "a", "data": data}]}
            async with http.post(f"{server.url}/api/streams/k/messages", json=body) as r:
                assert r.status == 200
            async with http.get(f"{server.url}/api/streams/k") as r:
                stats = (await r.json())["stats"]
            assert stats == {"message_count": 1, "consumer_count": 0, "storage_size": 1 + len(data)}
        check_db(server.db_path).assert_ok()


async def test_compacted_in_flight_delivery_is_released_once(tmp_path: Path) -> None:
    """When a delivered message was superseded (one_message_per_key) and its ack deadline
    passed, receive deleted the delivery by the *message's* seq (NULL: it is gone), so the
    row stayed and every later receive released it again: ``outstanding`` went negative and
    max_ack_pending stopped holding."""
    async with run_server(tmp_path / "gone.db") as server, aiohttp.ClientSession() as http:
        base = f"{server.url}/api/streams"
        await http.post(base, json={"name": "k", "one_message_per_key": True})
        consumer = {"name": "c", "filter_key_pattern": ">", "ack_wait_ms": 20, "max_ack_pending": 1}
        await http.post(f"{base}/k/consumers", json=consumer)

        async def publish(key: str, data: str) -> None:
            body = {"messages": [{"key": key, "data": data}]}
            async with http.post(f"{base}/k/messages", json=body) as r:
                assert r.status == 200

        async def receive() -> list[int]:
            async with http.post(f"{base}/k/consumers/c/receive?batch_size=10") as r:
                return [d["message"]["seq"] for d in (await r.json())["data"]]

        await publish("a", "1")
        assert await receive() == [1]
        await publish("a", "2")  # supersedes seq 1 while it is in flight
        for _ in range(4):
            await asyncio.sleep(0.03)  # past the ack deadline: due again
            assert await receive() == [2]
        check_db(server.db_path).assert_ok()
        await publish("b", "3")
        await publish("c", "4")
        assert len(await receive()) <= 1  # max_ack_pending still holds
        async with http.get(f"{base}/k/consumers/c") as r:
            assert (await r.json())["stats"]["in_flight"] <= 1
        check_db(server.db_path).assert_ok()
