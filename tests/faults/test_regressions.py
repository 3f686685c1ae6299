"""Server bugs the fault tests found, each pinned by the smallest request that showed it."""

from __future__ import annotations

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
