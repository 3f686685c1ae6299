"""Consumers: create, list, get, delete, start positions, filters, stats, ephemeral ones."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.http_api import Api, msgs

from .helpers import eventually, expect_engine_gap, keys


async def test_create_consumer_shape(api: Api) -> None:
    stream = await api.stream("orders")
    body = await api.consumer(
        pattern="orders.>", ack_wait_ms=1500, max_ack_pending=7, max_deliver=3
    )
    uuid.UUID(body["id"])
    assert body["name"] == "billing" and body["stream_id"] == stream["id"]
    assert body["filter_key_pattern"] == "orders.>"
    assert body["kind"] == "pull"
    assert (body["ack_wait_ms"], body["max_ack_pending"], body["max_deliver"]) == (1500, 7, 3)
    assert body["account_id"] == stream["account_id"]
    defaults = await api.consumer(name="defaults")
    assert (defaults["ack_wait_ms"], defaults["max_ack_pending"]) == (30000, 10000)
    assert defaults["max_deliver"] is None


async def test_duplicate_consumer_name_is_422_but_per_stream(api: Api) -> None:
    await api.stream("orders")
    await api.stream("other")
    await api.consumer()
    status, err = await api.call(
        "POST", "/api/streams/orders/consumers", {"name": "billing", "filter_key_pattern": "x"}
    )
    assert status == 422
    assert err["validation_errors"] == {"name": ["has already been taken"]}
    await api.consumer("other")  # same name, other stream: fine


async def test_list_get_delete(api: Api) -> None:
    stream = await api.stream("orders")
    a = await api.consumer(name="a")
    b = await api.consumer(name="b", pattern="x.*")
    listed = (await api.ok("GET", "/api/streams/orders/consumers"))["data"]
    assert [c["name"] for c in listed] == ["a", "b"]
    got = await api.ok("GET", f"/api/streams/{stream['id']}/consumers/{b['id']}")
    assert got["name"] == "b" and got["filter_key_pattern"] == "x.*"
    assert got["stats"] == {"pending": 0, "in_flight": 0, "dead": 0, "skipped": 0}
    deleted = await api.ok("DELETE", f"/api/streams/orders/consumers/{a['id']}")
    assert deleted == {"id": a["id"], "deleted": True}
    assert (await api.call("GET", "/api/streams/orders/consumers/a"))[0] == 404
    assert (await api.call("DELETE", "/api/streams/orders/consumers/a"))[0] == 404
    listed = (await api.ok("GET", "/api/streams/orders/consumers"))["data"]
    assert [c["name"] for c in listed] == ["b"]


async def test_unknown_consumer_404_everywhere(api: Api) -> None:
    await api.stream("orders")
    for ref in ["nope", str(uuid.uuid4()), "bad.name"]:
        base = f"/api/streams/orders/consumers/{ref}"
        for method, path, body in [
            ("GET", base, None),
            ("DELETE", base, None),
            ("GET", base + "/receive", None),
            ("POST", base + "/receive", {}),
            ("POST", base + "/ack", {"ack_ids": ["x"]}),
            ("POST", base + "/nack", {"ack_ids": ["x"]}),
            ("POST", base + "/extend", {"ack_ids": ["x"]}),
            ("GET", base + "/dead", None),
            ("POST", base + "/dead/redrive", {}),
            ("POST", base + "/dead/discard", {"seqs": [1]}),
            ("POST", base + "/reset", {"start": "all"}),
        ]:
            status, err = await api.call(method, path, body)
            assert status == 404, (method, path, status, err)
            assert (
                err["summary"] == "Not found: No `consumer` found matching the provided ID or name"
            )


async def test_consumer_validation(api: Api) -> None:
    await api.stream("orders")
    for body in [
        {"name": "c"},
        {"name": "c", "filter_key_pattern": "a..b"},
        {"name": "bad name", "filter_key_pattern": ">"},
        {"name": "c", "filter_key_pattern": ">", "ack_wait_ms": 0},
        {"name": "c", "filter_key_pattern": ">", "max_ack_pending": 0},
        {"name": "c", "filter_key_pattern": ">", "max_deliver": 0},
        {"name": "c", "filter_key_pattern": ">", "start": "later"},
        {"name": "c", "filter_key_pattern": ">", "kind": "push"},
    ]:
        status, _ = await api.call("POST", "/api/streams/orders/consumers", body)
        assert status == 422, body
    assert (await api.ok("GET", "/api/streams/orders/consumers"))["data"] == []


async def test_start_positions(api: Api) -> None:
    await api.stream("orders")
    await api.publish("orders", msgs("a", "b", "c"))
    await api.consumer(name="all", start="all")
    await api.consumer(name="new", start="new")
    await api.consumer(name="at2", start=2)
    await api.publish("orders", msgs("d"))
    assert keys(await api.receive(consumer="all")) == ["a", "b", "c", "d"]
    assert keys(await api.receive(consumer="new")) == ["d"]
    assert keys(await api.receive(consumer="at2")) == ["b", "c", "d"]


async def test_filter_key_pattern(api: Api) -> None:
    await api.stream("orders")
    await api.consumer(name="eu", pattern="orders.eu.*")
    await api.consumer(name="deep", pattern="orders.>")
    await api.consumer(name="exact", pattern="orders.us.7")
    await api.publish(
        "orders", msgs("orders.eu.1", "orders.us.7", "orders.eu.2.x", "other.eu.3", "orders.eu.4")
    )
    assert keys(await api.receive(consumer="eu")) == ["orders.eu.1", "orders.eu.4"]
    assert keys(await api.receive(consumer="deep")) == [
        "orders.eu.1",
        "orders.us.7",
        "orders.eu.2.x",
        "orders.eu.4",
    ]
    assert keys(await api.receive(consumer="exact")) == ["orders.us.7"]


async def test_sparse_filter_over_long_backlog(api: Api) -> None:
    await api.stream("orders")
    await api.consumer(pattern="rare")
    batch = [{"key": "rare" if i == 1700 else "common", "data": str(i)} for i in range(2000)]
    await api.publish("orders", batch[:1000])
    await api.publish("orders", batch[1000:])
    got = await api.receive(wait_for=2000)
    assert [(d["message"]["key"], d["message"]["seq"]) for d in got] == [("rare", 1701)]


async def test_stats_pending_and_in_flight(api: Api) -> None:
    await api.stream("orders")
    await api.consumer(pattern="a.*")
    await api.publish("orders", msgs("a.1", "b.1", "a.2", "a.3"))
    assert await api.stats() == {"pending": 3, "in_flight": 0, "dead": 0, "skipped": 0}
    got = await api.receive(batch_size=2)
    assert await api.stats() == {"pending": 1, "in_flight": 2, "dead": 0, "skipped": 0}
    await api.ack([got[0]["ack_id"]])
    assert await api.stats() == {"pending": 1, "in_flight": 1, "dead": 0, "skipped": 0}


async def test_stats_count_nacked_messages_as_pending(
    api: Api, request: pytest.FixtureRequest
) -> None:
    expect_engine_gap(
        request,
        api,
        "jetstream",
        "JetStream keeps a nacked (or expired) message in the consumer's ack-pending set until "
        "it is redelivered, and consumer info does not split that set, so it counts as in_flight",
    )
    await api.stream("orders")
    await api.consumer()
    await api.publish("orders", msgs("a", "b"))
    got = await api.receive()
    await api.nack([got[0]["ack_id"]], delay_ms=60_000)
    assert await api.stats() == {"pending": 1, "in_flight": 1, "dead": 0, "skipped": 0}


async def test_ephemeral_consumer_is_reaped_when_idle(api: Api) -> None:
    await api.stream("orders")
    body = await api.ok(
        "POST",
        "/api/streams/orders/consumers",
        {"filter_key_pattern": ">", "ephemeral": True, "inactive_threshold_ms": 300},
    )
    name = body["name"]
    assert body["ephemeral"] is True and body["inactive_threshold_ms"] == 300
    for _ in range(4):  # activity keeps it alive
        await asyncio.sleep(0.15)
        await api.receive(consumer=name)
    await api.ok("GET", f"/api/streams/orders/consumers/{name}")

    async def status() -> int:
        return (await api.call("GET", f"/api/streams/orders/consumers/{name}"))[0]

    assert await eventually(status, lambda s: s == 404, timeout=5) == 404


async def test_ephemeral_default_threshold(api: Api) -> None:
    await api.stream("orders")
    body = await api.consumer(name="e", ephemeral=True)
    assert body["ephemeral"] is True
    assert body["inactive_threshold_ms"] == 30_000
    durable = await api.consumer(name="d")
    assert durable["ephemeral"] is False and durable["inactive_threshold_ms"] is None
