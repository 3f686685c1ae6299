"""Consumer routes: create, list, get (with stats), delete, start, ephemeral, validation."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from streamkit.testing import ServerHandle
from tests.http_api import Api, msgs

CONSUMER_404 = "Not found: No `consumer` found matching the provided ID or name"


async def test_create_consumer_shape(api: Api) -> None:
    stream = await api.stream("orders")
    status, body = await api.call(
        "POST",
        "/api/streams/orders/consumers",
        {"name": "billing", "filter_key_pattern": "orders.>", "kind": "pull"},
    )
    assert status == 201
    uuid.UUID(body["id"])
    expected = {
        "name": "billing",
        "stream_id": stream["id"],
        "account_id": stream["account_id"],
        "filter_key_pattern": "orders.>",
        "kind": "pull",
        "ack_wait_ms": 30000,
        "max_ack_pending": 10000,
        "max_deliver": None,
        "max_waiting": 20,
        "status": "active",
        "ephemeral": False,
        "inactive_threshold_ms": None,
    }
    assert {k: body[k] for k in expected} == expected
    assert body["inserted_at"].endswith("Z")
    assert "data" not in body and "stats" not in body


async def test_list_get_delete(api: Api) -> None:
    await api.stream("orders")
    a = await api.consumer(name="a", ack_wait_ms=1000, max_ack_pending=5, max_deliver=3)
    b = await api.consumer(name="b")
    listed = (await api.ok("GET", "/api/streams/orders/consumers"))["data"]
    assert [c["name"] for c in listed] == ["a", "b"]
    assert all("stats" not in c for c in listed)
    got = await api.ok("GET", "/api/streams/orders/consumers/a")
    assert (got["ack_wait_ms"], got["max_ack_pending"], got["max_deliver"]) == (1000, 5, 3)
    assert got["stats"] == {"pending": 0, "in_flight": 0, "dead": 0, "skipped": 0}
    assert (await api.ok("GET", f"/api/streams/orders/consumers/{b['id']}"))["name"] == "b"

    deleted = await api.ok("DELETE", f"/api/streams/orders/consumers/{a['id']}")
    assert deleted == {"id": a["id"], "deleted": True}
    assert await api.ok("DELETE", "/api/streams/orders/consumers/b") == {
        "id": b["id"],
        "deleted": True,
    }
    for method in ("GET", "DELETE"):
        status, err = await api.call(method, "/api/streams/orders/consumers/a")
        assert (status, err["summary"]) == (404, CONSUMER_404)


async def test_consumer_names_are_per_stream(api: Api) -> None:
    await api.stream("a")
    await api.stream("b")
    await api.consumer("a", "c")
    await api.consumer("b", "c")
    status, err = await api.call(
        "POST", "/api/streams/a/consumers", {"name": "c", "filter_key_pattern": ">"}
    )
    assert status == 422
    assert err["validation_errors"] == {"name": ["has already been taken"]}


async def test_unknown_consumer_404_everywhere(api: Api) -> None:
    await api.stream("orders")
    base = "/api/streams/orders/consumers/nope"
    cases: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", base, None),
        ("DELETE", base, None),
        ("GET", base + "/receive", None),
        ("POST", base + "/receive", None),
        ("POST", base + "/ack", {"ack_ids": []}),
        ("POST", base + "/nack", {"ack_ids": []}),
        ("POST", base + "/extend", {"ack_ids": []}),
        ("GET", base + "/dead", None),
    ]
    for method, path, body in cases:
        status, err = await api.call(method, path, body)
        assert (status, err["summary"]) == (404, CONSUMER_404), (method, path)


async def test_consumer_validation(api: Api) -> None:
    await api.stream("orders")
    good: dict[str, Any] = {"name": "c", "filter_key_pattern": ">"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"filter_key_pattern": ">"}, "name"),
        ({**good, "name": "a.b"}, "name"),
        ({"name": "c"}, "filter_key_pattern"),
        ({**good, "filter_key_pattern": "a.>.b"}, "filter_key_pattern"),
        ({**good, "filter_key_pattern": "a b"}, "filter_key_pattern"),
        ({**good, "filter_key_pattern": ""}, "filter_key_pattern"),
        ({**good, "kind": "push"}, "kind"),
        ({**good, "ack_wait_ms": 0}, "ack_wait_ms"),
        ({**good, "ack_wait_ms": "1000"}, "ack_wait_ms"),
        ({**good, "ack_wait_ms": 1.5}, "ack_wait_ms"),
        ({**good, "max_ack_pending": 0}, "max_ack_pending"),
        ({**good, "max_deliver": 0}, "max_deliver"),
        ({**good, "max_deliver": True}, "max_deliver"),
        ({**good, "start": "middle"}, "start"),
        ({**good, "start": -1}, "start"),
        ({**good, "ephemeral": "yes"}, "ephemeral"),
        ({**good, "inactive_threshold_ms": 1000}, "inactive_threshold_ms"),
        ({**good, "ephemeral": True, "inactive_threshold_ms": 0}, "inactive_threshold_ms"),
    ]
    for body, field in cases:
        status, err = await api.call("POST", "/api/streams/orders/consumers", body)
        assert status == 422, body
        assert field in err["validation_errors"], (field, err)
    assert (await api.ok("GET", "/api/streams/orders/consumers"))["data"] == []


async def test_start_positions(api: Api) -> None:
    await api.stream("orders")
    await api.publish("orders", msgs("a", "b", "c"))
    await api.consumer(name="all")
    await api.consumer(name="new", start="new")
    await api.consumer(name="from2", start=2)
    await api.publish("orders", msgs("d"))

    async def keys(consumer: str) -> list[str]:
        return [d["message"]["key"] for d in await api.receive(consumer=consumer)]

    assert await keys("all") == ["a", "b", "c", "d"]
    assert await keys("new") == ["d"]
    assert await keys("from2") == ["b", "c", "d"]


async def test_filter_key_pattern(api: Api) -> None:
    await api.stream("orders")
    await api.consumer(name="eu", pattern="orders.eu.*")
    await api.consumer(name="deep", pattern="orders.>")
    await api.consumer(name="exact", pattern="orders.us.2")
    await api.consumer(name="mid", pattern="orders.*.3")
    await api.publish(
        "orders", msgs("orders.eu.1", "orders.us.2", "orders.eu.3", "x", "orders.eu.1.z")
    )

    async def keys(consumer: str) -> list[str]:
        return [d["message"]["key"] for d in await api.receive(consumer=consumer)]

    assert await keys("eu") == ["orders.eu.1", "orders.eu.3"]
    assert await keys("deep") == ["orders.eu.1", "orders.us.2", "orders.eu.3", "orders.eu.1.z"]
    assert await keys("exact") == ["orders.us.2"]
    assert await keys("mid") == ["orders.eu.3"]
    stats = (await api.ok("GET", "/api/streams/orders/consumers/eu"))["stats"]
    assert stats == {"pending": 0, "in_flight": 2, "dead": 0, "skipped": 0}


async def test_sparse_filter_over_long_backlog(api: Api) -> None:
    await api.stream("orders")
    await api.consumer(pattern="rare")
    for _ in range(25):  # 25k messages: more than one scan window
        await api.publish("orders", [{"key": "common", "data": "x"}] * 1000)
    await api.publish("orders", msgs("rare"))
    got = await api.receive()
    assert [d["message"]["key"] for d in got] == ["rare"]


async def test_stats_pending(api: Api) -> None:
    await api.stream("orders")
    await api.consumer(pattern="a.>")
    await api.publish("orders", msgs("a.1", "a.2", "b.1", "a.3"))
    stats = (await api.ok("GET", "/api/streams/orders/consumers/billing"))["stats"]
    assert stats == {"pending": 3, "in_flight": 0, "dead": 0, "skipped": 0}
    got = await api.receive(batch_size=2)
    stats = (await api.ok("GET", "/api/streams/orders/consumers/billing"))["stats"]
    assert stats == {"pending": 1, "in_flight": 2, "dead": 0, "skipped": 0}
    await api.nack([got[0]["ack_id"]], delay_ms=60_000)
    stats = (await api.ok("GET", "/api/streams/orders/consumers/billing"))["stats"]
    assert stats == {"pending": 2, "in_flight": 1, "dead": 0, "skipped": 0}


async def test_ephemeral_consumer_is_reaped_when_idle(api: Api) -> None:
    await api.stream("orders")
    body = await api.ok(
        "POST",
        "/api/streams/orders/consumers",
        {"filter_key_pattern": ">", "ephemeral": True, "inactive_threshold_ms": 200},
    )
    name = body["name"]
    assert name.startswith("ephemeral-")
    assert body["ephemeral"] is True
    assert body["inactive_threshold_ms"] == 200
    # activity keeps it alive
    for _ in range(4):
        await asyncio.sleep(0.1)
        await api.receive(consumer=name)
    # a long-poll longer than the threshold counts as activity too
    await api.receive(consumer=name, wait_for=400)
    await api.ok("GET", f"/api/streams/orders/consumers/{name}")
    # idle: gone within a few thresholds
    for _ in range(50):
        status, _ = await api.call("GET", f"/api/streams/orders/consumers/{name}")
        if status == 404:
            break
        await asyncio.sleep(0.05)
    assert status == 404


async def test_ephemeral_default_threshold(api: Api) -> None:
    await api.stream("orders")
    body = await api.consumer(name="e", ephemeral=True)
    assert body["ephemeral"] is True
    assert body["inactive_threshold_ms"] == 30_000


async def test_consumers_survive_restart(streamkit_server: ServerHandle, api: Api) -> None:
    await api.stream("orders")
    await api.consumer(pattern="a.*", ack_wait_ms=60_000)
    await api.publish("orders", msgs("a.1", "a.2", "b.1"))
    (first,) = await api.receive(batch_size=1)
    store = streamkit_server.store
    await store.close()
    from streamkit.server.store.sqlite.store import SqliteStore

    reopened = SqliteStore(store.path)
    await reopened.open()
    try:
        c = await reopened.get_consumer("orders", "billing")
        assert c.stats is not None
        assert (c.stats.pending, c.stats.in_flight) == (1, 1)
        await reopened.ack("orders", "billing", [first["ack_id"]])
        got = await reopened.receive("orders", "billing", 10)
        assert [d["message"]["key"] for d in got] == ["a.2"]
    finally:
        await reopened.close()
