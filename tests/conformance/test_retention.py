"""Retention limits, as observed through the HTTP API, on every engine.

Byte limits are compared loosely: SQLite counts key + data bytes, JetStream
its own stored size (subject, headers and a per-message overhead included).
"""

from __future__ import annotations

from typing import Any

from tests.http_api import Api

from .helpers import eventually

KIB = "x" * 1000


def _batch(n: int, data: str = "d", key: str = "orders.eu") -> list[dict[str, Any]]:
    return [{"key": key, "data": data} for _ in range(n)]


async def _seqs(api: Api, stream: str = "orders") -> list[int]:
    return [m["seq"] for m in await api.read(stream, limit=1000)]


async def _stream(api: Api, stream: str = "orders") -> dict[str, Any]:
    body: dict[str, Any] = await api.ok("GET", f"/api/streams/{stream}")
    return body


async def test_retain_up_to_keeps_the_newest(api: Api) -> None:
    await api.stream("orders", retain_up_to=100)
    for _ in range(3):
        await api.publish("orders", _batch(100))
    assert (await _stream(api))["stats"]["message_count"] == 100
    assert await _seqs(api) == list(range(201, 301))


async def test_byte_limit_drops_the_oldest(api: Api) -> None:
    body = await api.stream("orders", max_bytes=50_000)
    assert body["max_bytes"] == 50_000
    for _ in range(4):
        await api.publish("orders", _batch(50, KIB))
    stats = (await _stream(api))["stats"]
    assert 0 < stats["storage_size"] <= 50_000
    assert 25 <= stats["message_count"] < 50
    assert await _seqs(api) == list(range(201 - stats["message_count"], 201))


async def test_max_age_expires_old_messages(api: Api) -> None:
    body = await api.stream("orders", max_age_ms=1000)
    assert body["max_age_ms"] == 1000
    await api.publish("orders", _batch(5))
    stats = await eventually(
        lambda: _stream(api), lambda s: s["stats"]["message_count"] == 0, timeout=15
    )
    assert stats["stats"]["message_count"] == 0
    assert await _seqs(api) == []
    await api.publish("orders", _batch(1))
    assert await _seqs(api) == [6]


async def test_consumer_continues_from_the_first_retained(api: Api) -> None:
    await api.stream("orders", retain_up_to=10)
    await api.consumer()
    await api.publish("orders", _batch(30))
    got = await api.receive(batch_size=100)
    assert [d["message"]["seq"] for d in got] == list(range(21, 31))


async def test_acking_trimmed_deliveries_is_ignored(api: Api) -> None:
    await api.stream("orders", retain_up_to=10)
    await api.consumer()
    await api.publish("orders", _batch(10))
    held = await api.receive(batch_size=4)
    assert [d["message"]["seq"] for d in held] == [1, 2, 3, 4]
    await api.publish("orders", _batch(20))  # seqs 1..20 go
    await api.ack([d["ack_id"] for d in held])
    rest = await api.receive(batch_size=100)
    assert [d["message"]["seq"] for d in rest] == list(range(21, 31))
    await api.ack([d["ack_id"] for d in rest])
    stats = await eventually(lambda: api.stats(), lambda s: s["in_flight"] == 0)
    assert stats["in_flight"] == 0 and stats["pending"] == 0


async def test_update_stream_changes_limits(api: Api) -> None:
    created = await api.stream("orders")
    assert (created["retain_up_to"], created["max_bytes"], created["max_age_ms"]) == (
        None,
        None,
        None,
    )
    await api.publish("orders", _batch(50))
    updated = await api.ok("PATCH", "/api/streams/orders", {"retain_up_to": 10})
    assert updated["id"] == created["id"] and updated["retain_up_to"] == 10
    await eventually(lambda: _stream(api), lambda s: s["stats"]["message_count"] == 10)
    assert await _seqs(api) == list(range(41, 51))
    got = await api.ok("GET", f"/api/streams/{created['id']}")
    assert got["retain_up_to"] == 10

    lifted = await api.ok(
        "PATCH", f"/api/streams/{created['id']}", {"retain_up_to": None, "max_bytes": 10**9}
    )
    assert lifted["retain_up_to"] is None and lifted["max_bytes"] == 10**9
    await api.publish("orders", _batch(20))
    assert (await _stream(api))["stats"]["message_count"] == 30


async def test_update_stream_errors(api: Api) -> None:
    await api.stream("orders", retain_up_to=100)
    await api.publish("orders", _batch(20))

    status, err = await api.call("PATCH", "/api/streams/nope", {"retain_up_to": 5})
    assert status == 404
    assert err["summary"] == "Not found: No `stream` found matching the provided ID or name"

    for body, field in (
        ({"retain_up_to": 0}, "retain_up_to"),
        ({"max_age_ms": "1s"}, "max_age_ms"),
        ({"max_bytes": -1, "retain_up_to": 5}, "max_bytes"),
        ({"one_message_per_key": True}, "one_message_per_key"),
        ({"name": "other"}, "name"),
        ([], "body"),
    ):
        status, err = await api.call("PATCH", "/api/streams/orders", body)
        assert status == 422, (body, err)
        assert err["summary"] == "Validation failed" and err["code"] == "validation_failed"
        assert field in err["validation_errors"], (body, err)

    status, err = await api.call(
        "PATCH",
        "/api/streams/orders",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert status == 400 and "summary" in err
    unchanged = await api.ok("PATCH", "/api/streams/orders", {})
    assert unchanged["retain_up_to"] == 100

    # Nothing a rejected update carried was applied.
    after = await _stream(api)
    assert after["retain_up_to"] == 100 and after["max_bytes"] is None
    assert after["stats"]["message_count"] == 20


async def test_create_rejects_bad_limits(api: Api) -> None:
    for body, field in (
        ({"name": "orders", "max_bytes": 0}, "max_bytes"),
        ({"name": "orders", "max_age_ms": 1.5}, "max_age_ms"),
        ({"name": "orders", "max_age_ms": True}, "max_age_ms"),
    ):
        status, err = await api.call("POST", "/api/streams", body)
        assert status == 422, (body, err)
        assert field in err["validation_errors"]
    assert (await api.call("GET", "/api/streams/orders"))[0] == 404
