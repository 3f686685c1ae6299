"""``GET /metrics`` on a real server: counters follow the traffic, gauges the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from streamkit.server.state import STORE
from streamkit.testing import ServerHandle, run_server

from .exposition import Family, parse_exposition

MESSAGES = "/api/streams/{stream}/messages"
RECEIVE = "/api/streams/{stream}/consumers/{consumer}/receive"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


class Calls:
    def __init__(self, http: aiohttp.ClientSession, server: ServerHandle) -> None:
        self.http = http
        self.url = server.url

    async def ok(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        async with self.http.request(method, self.url + path, json=body, params=params) as r:
            assert r.status < 300, await r.text()
            return await r.json()

    async def metrics(self) -> dict[str, Family]:
        async with self.http.get(self.url + "/metrics") as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            return parse_exposition(await r.text())


def value(families: dict[str, Family], name: str, **labels: str) -> float:
    return families[name].samples.get(tuple(labels.items()), 0.0)


async def test_counters_follow_the_traffic(
    http: aiohttp.ClientSession, streamkit_server: ServerHandle
) -> None:
    api = Calls(http, streamkit_server)
    await api.ok("POST", "/api/streams", {"name": "orders"})
    consumer = {"name": "billing", "filter_key_pattern": ">", "max_deliver": 2}
    await api.ok("POST", "/api/streams/orders/consumers", consumer)
    batch = [{"key": f"orders.{i}", "data": str(i), "id": f"m{i}"} for i in range(5)]
    await api.ok("POST", "/api/streams/orders/messages", {"messages": batch})
    await api.ok("POST", "/api/streams/orders/messages", {"messages": batch[:2]})  # dedupe
    billing = "/api/streams/orders/consumers/billing"
    got = (await api.ok("GET", billing + "/receive", batch_size=4))["data"]
    ids = [d["ack_id"] for d in got]
    await api.ok("POST", billing + "/ack", {"ack_ids": ids[:2]})
    await api.ok("POST", billing + "/nack", {"ack_ids": ids[2:]})
    again = (await api.ok("GET", billing + "/receive", batch_size=10))["data"]
    assert sorted(d["delivery_count"] for d in again) == [1, 2, 2]
    # Nack the redelivered ones again: with max_deliver=2 they are dead-lettered.
    second = [d["ack_id"] for d in again if d["delivery_count"] == 2]
    await api.ok("POST", billing + "/nack", {"ack_ids": second})

    m = await api.metrics()
    assert value(m, "streamkit_messages_published_total") == 5
    assert value(m, "streamkit_messages_delivered_total") == 7
    assert value(m, "streamkit_messages_redelivered_total") == 2
    assert value(m, "streamkit_messages_acked_total") == 2
    assert value(m, "streamkit_messages_nacked_total") == 4

    stats = (await api.ok("GET", billing))["stats"]
    assert value(m, "streamkit_messages_in_flight", stream="orders") == stats["in_flight"] == 1
    assert value(m, "streamkit_messages_dead_lettered", stream="orders") == stats["dead"] == 2
    assert value(m, "streamkit_messages_pending", stream="orders") == stats["pending"]
    assert value(m, "streamkit_consumers", stream="orders") == 1


async def test_request_metrics_use_route_templates(
    http: aiohttp.ClientSession, streamkit_server: ServerHandle
) -> None:
    api = Calls(http, streamkit_server)
    one = {"messages": [{"key": "k", "data": "x"}]}
    for name in ("orders", "billing"):
        await api.ok("POST", "/api/streams", {"name": name})
        await api.ok("POST", f"/api/streams/{name}/messages", one)
    async with http.get(streamkit_server.url + "/api/streams/nope") as r:
        assert r.status == 404
    async with http.get(streamkit_server.url + "/no/such/route") as r:
        assert r.status == 404
    async with http.post(streamkit_server.url + "/api/streams", data=b"{") as r:
        assert r.status == 400

    m = await api.metrics()
    requests = m["streamkit_http_requests_total"].samples
    assert requests[(("method", "POST"), ("route", MESSAGES), ("status", "200"))] == 2
    assert requests[(("method", "GET"), ("route", "/api/streams/{stream}"), ("status", "404"))] == 1
    assert requests[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert requests[(("method", "POST"), ("route", "/api/streams"), ("status", "400"))] == 1
    routes = {dict(labels)["route"] for labels in requests}
    assert not any("orders" in r or "billing" in r or "no/such" in r for r in routes)
    latency = m["streamkit_http_request_duration_seconds"].series["_count"]
    assert latency[(("method", "POST"), ("route", MESSAGES))] == 2


async def test_long_polls_and_live_tails(
    http: aiohttp.ClientSession, streamkit_server: ServerHandle
) -> None:
    api = Calls(http, streamkit_server)
    await api.ok("POST", "/api/streams", {"name": "orders"})
    await api.ok("POST", "/api/streams/orders/consumers", {"name": "c", "filter_key_pattern": ">"})
    await api.ok("GET", "/api/streams/orders/consumers/c/receive", wait_for=50)
    sse = await http.get(streamkit_server.url + "/api/streams/orders/messages/sse")
    await sse.content.readany()
    m = await api.metrics()
    assert value(m, "streamkit_sse_connections") == 1
    latency = m["streamkit_http_request_duration_seconds"].series["_count"]
    assert latency[(("method", "GET"), ("route", RECEIVE))] == 1
    assert not any(dict(k)["route"].endswith("/sse") for k in latency)  # tails are not timed
    sse.close()


async def test_metrics_need_the_api_key_when_auth_is_on(http: aiohttp.ClientSession) -> None:
    async with run_server(api_key="k") as server:
        async with http.get(server.url + "/metrics") as r:
            assert r.status == 401
        async with http.get(server.url + "/metrics", headers={"Authorization": "Bearer k"}) as r:
            assert r.status == 200
            parse_exposition(await r.text())


async def test_scrape_survives_a_store_error(
    http: aiohttp.ClientSession, streamkit_server: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamkit.server.store.base import StoreUnavailable

    async def broken() -> list[Any]:
        raise StoreUnavailable("closing")

    monkeypatch.setattr(streamkit_server.app[STORE], "list_streams", broken)
    m = await Calls(http, streamkit_server).metrics()
    assert value(m, "streamkit_metrics_store_errors_total") == 1
