"""Clear startup errors, and surviving a NATS restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from streamkit.server.engines import EngineError, create_store
from streamkit.server.runner import start_server
from streamkit.server.store.base import StoreUnavailable
from streamkit.server.store.jetstream.store import JetStreamStore
from tests.nats_server import NatsServer, free_port, require_binary


async def test_unreachable_nats_fails_fast_with_the_urls() -> None:
    port = free_port()
    store = JetStreamStore(f"nats://127.0.0.1:{port}", connect_timeout=1.0)
    with pytest.raises(
        StoreUnavailable, match=f"cannot connect to NATS at nats://127.0.0.1:{port}"
    ):
        await asyncio.wait_for(store.open(), 15)


async def test_jetstream_disabled_is_named(tmp_path: Path) -> None:
    server = NatsServer(binary=require_binary(), store_dir=tmp_path)

    def without_js() -> list[str]:
        return [c for c in NatsServer.command(server) if c != "-js"]

    server.command = without_js  # type: ignore[method-assign]
    server.start()
    try:
        store = JetStreamStore(server.url)
        with pytest.raises(StoreUnavailable, match="JetStream is not enabled"):
            await asyncio.wait_for(store.open(), 15)
    finally:
        server.stop()


def test_engine_factory_errors() -> None:
    with pytest.raises(EngineError, match="unknown engine 'mongo'"):
        create_store("mongo")
    with pytest.raises(EngineError, match="prefix"):
        create_store("jetstream", nats_urls="nats://127.0.0.1:1", nats_prefix="no_underscores")
    store = create_store("jetstream", nats_urls="nats://a:1, nats://b:2", replicas=3)
    assert isinstance(store, JetStreamStore)
    assert store.nats_urls == ["nats://a:1", "nats://b:2"] and store.replicas == 3


async def test_gateway_survives_a_nats_restart(nats_server: NatsServer) -> None:
    store = JetStreamStore(nats_server.url, reconnect_wait=0.1, request_timeout=2.0)
    running = await start_server(store)
    url = running.url + "/api/streams"
    try:
        async with aiohttp.ClientSession() as http:
            await http.post(url, json={"name": "orders"})
            body = {"messages": [{"key": "a", "data": "before", "id": "m1"}]}
            async with http.post(url + "/orders/messages", json=body) as resp:
                assert resp.status == 200
            nats_server.stop()
            async with http.post(url + "/orders/messages", json=body) as resp:
                assert resp.status == 503  # retryable, not a 500 or a hang
                assert resp.headers["Retry-After"]
            nats_server.start()
            status = 0
            for _ in range(100):  # bounded: reconnects within a few seconds
                body = {"messages": [{"key": "b", "data": "after", "id": "m2"}]}
                async with http.post(url + "/orders/messages", json=body) as resp:
                    status = resp.status
                if status == 200:
                    break
                await asyncio.sleep(0.1)
            assert status == 200
            async with http.get(url + "/orders/messages") as resp:
                data = (await resp.json())["data"]
            assert [m["data"] for m in data] == ["before", "after"]
    finally:
        await running.close()
