"""A 3-node JetStream cluster with R3 streams: losing a node loses nothing acked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from streamkit.server.runner import start_server
from streamkit.server.store.jetstream.store import JetStreamStore
from tests.nats_server import NatsCluster, make_cluster, require_binary

pytestmark = pytest.mark.slow

TOTAL = 400
BATCH = 10


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nodes = make_cluster(require_binary(), tmp_path / "cluster", size=3)
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


async def _call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    """One request, retried while the cluster elects leaders (503) - bounded."""
    for _ in range(300):
        try:
            async with http.request(method, url, json=body) as resp:
                if resp.status in (500, 503):
                    await asyncio.sleep(0.1)
                    continue
                assert resp.status < 300, (resp.status, await resp.text())
                return await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            await asyncio.sleep(0.1)
    raise AssertionError(f"{method} {url} never succeeded")


async def _wait_for_meta_leader(url: str, http: aiohttp.ClientSession) -> None:
    await _call(http, "GET", url + "/api/streams")


async def test_r3_stream_survives_losing_a_node(cluster: NatsCluster) -> None:
    store = JetStreamStore(cluster.urls, replicas=3, reconnect_wait=0.1, request_timeout=3.0)
    running = None
    for _ in range(100):  # the cluster needs a moment to elect its meta leader
        try:
            running = await start_server(store)
            break
        except Exception:
            await asyncio.sleep(0.2)
    assert running is not None
    base = running.url
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            await _wait_for_meta_leader(base, http)
            await _call(http, "POST", base + "/api/streams", {"name": "orders"})
            consumer = {"name": "billing", "filter_key_pattern": ">", "ack_wait_ms": 3000}
            await _call(http, "POST", base + "/api/streams/orders/consumers", consumer)
            acked_publishes: set[int] = set()
            for n, start in enumerate(range(0, TOTAL, BATCH)):
                if n == TOTAL // BATCH // 2:
                    # The node leading the stream vanishes mid-run: a new leader
                    # must be elected and the gateway must carry on.
                    info = await store.conn.api("STREAM.INFO.streamkit_orders")
                    leader = info["cluster"]["leader"]
                    next(node for node in cluster.nodes if node.name == leader).kill()
                batch = [
                    {"key": f"k.{i % 4}", "data": str(i), "id": f"m{i}"}
                    for i in range(start, start + BATCH)
                ]
                body = {"messages": batch}
                result = await _call(http, "POST", base + "/api/streams/orders/messages", body)
                acked_publishes.update(a["seq"] for a in result["data"]["acks"])
            assert len(acked_publishes) == TOTAL

            received: set[int] = set()
            path = base + "/api/streams/orders/consumers/billing"
            for _ in range(400):
                got = await _call(http, "GET", path + "/receive?batch_size=100&wait_for=500")
                items = got["data"]
                if not items and received >= acked_publishes:
                    break
                received.update(i["message"]["seq"] for i in items)
                ids = [i["ack_id"] for i in items]
                if ids:
                    await _call(http, "POST", path + "/ack", {"ack_ids": ids})
            assert received == acked_publishes
            stream = await _call(http, "GET", base + "/api/streams/orders")
            assert stream["stats"]["message_count"] == TOTAL
    finally:
        await running.close()
