"""Stream routes: create, list, get, delete, options, validation."""

from __future__ import annotations

import uuid

from tests.http_api import Api

STREAM_404 = "Not found: No `stream` found matching the provided ID or name"


async def test_create_stream_shape(api: Api) -> None:
    status, body = await api.call("POST", "/api/streams", {"name": "orders"})
    assert status == 201
    uuid.UUID(body["id"])
    uuid.UUID(body["account_id"])
    assert body["name"] == "orders"
    assert body["stats"] == {"message_count": 0, "consumer_count": 0, "storage_size": 0}
    assert body["inserted_at"].endswith("Z")
    assert body["one_message_per_key"] is False
    assert body["process_unmodified"] is False
    assert body["max_storage_gb"] is None
    assert "data" not in body  # sequin-py unwraps a top-level "data" key


async def test_create_with_options(api: Api) -> None:
    body = await api.stream(
        "kv",
        one_message_per_key=True,
        process_unmodified=True,
        max_storage_gb=10,
        retain_up_to=1_000_000,
        retain_at_least=100_000,
    )
    got = await api.ok("GET", "/api/streams/kv")
    for field, value in [
        ("one_message_per_key", True),
        ("process_unmodified", True),
        ("max_storage_gb", 10),
        ("retain_up_to", 1_000_000),
        ("retain_at_least", 100_000),
    ]:
        assert body[field] == value
        assert got[field] == value


async def test_list_get_delete(api: Api) -> None:
    a = await api.stream("a")
    b = await api.stream("b")
    listed = await api.ok("GET", "/api/streams")
    assert [s["name"] for s in listed["data"]] == ["a", "b"]
    assert (await api.ok("GET", "/api/streams/a"))["id"] == a["id"]
    assert (await api.ok("GET", f"/api/streams/{b['id']}"))["name"] == "b"

    assert await api.ok("DELETE", f"/api/streams/{a['id']}") == {"id": a["id"], "deleted": True}
    assert await api.ok("DELETE", "/api/streams/b") == {"id": b["id"], "deleted": True}
    assert (await api.ok("GET", "/api/streams"))["data"] == []
    status, body = await api.call("GET", "/api/streams/a")
    assert (status, body["summary"]) == (404, STREAM_404)


async def test_delete_removes_messages_and_consumers(api: Api) -> None:
    await api.stream("orders")
    await api.consumer("orders", "billing")
    await api.publish("orders", [{"key": "k", "data": "1"}])
    await api.ok("DELETE", "/api/streams/orders")
    await api.stream("orders")  # same name, fresh stream
    stream = await api.ok("GET", "/api/streams/orders")
    assert stream["stats"] == {"message_count": 0, "consumer_count": 0, "storage_size": 0}
    assert (await api.ok("GET", "/api/streams/orders/consumers"))["data"] == []


async def test_stats(api: Api) -> None:
    await api.stream("orders")
    await api.consumer("orders", "c1")
    await api.consumer("orders", "c2")
    await api.publish("orders", [{"key": "a.b", "data": "xyz"}, {"key": "a", "data": ""}])
    stats = (await api.ok("GET", "/api/streams/orders"))["stats"]
    assert stats == {"message_count": 2, "consumer_count": 2, "storage_size": 3 + 3 + 1}


async def test_duplicate_name_is_422(api: Api) -> None:
    await api.stream("orders")
    status, body = await api.call("POST", "/api/streams", {"name": "orders"})
    assert status == 422
    assert body["summary"] == "Validation failed"
    assert body["validation_errors"] == {"name": ["has already been taken"]}


async def test_stream_validation(api: Api) -> None:
    cases = [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "has space"}, "name"),
        ({"name": "dots.not.allowed"}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"name": "trailing\n"}, "name"),
        ({"name": 7}, "name"),
        ({"name": "ok", "one_message_per_key": "yes"}, "one_message_per_key"),
        ({"name": "ok", "process_unmodified": 1}, "process_unmodified"),
        ({"name": "ok", "max_storage_gb": 0}, "max_storage_gb"),
        ({"name": "ok", "retain_up_to": "10"}, "retain_up_to"),
        ({"name": "ok", "retain_at_least": True}, "retain_at_least"),
    ]
    for body, field in cases:
        status, err = await api.call("POST", "/api/streams", body)
        assert status == 422, body
        assert field in err["validation_errors"], (body, err)
    assert (await api.ok("GET", "/api/streams"))["data"] == []


async def test_unknown_stream_404_everywhere(api: Api) -> None:
    for method, path, body in [
        ("GET", "/api/streams/nope", None),
        ("DELETE", "/api/streams/nope", None),
        ("POST", "/api/streams/nope/messages", {"messages": [{"key": "a", "data": "b"}]}),
        ("GET", "/api/streams/nope/messages", None),
        ("POST", "/api/streams/nope/consumers", {"name": "c", "filter_key_pattern": ">"}),
        ("GET", "/api/streams/nope/consumers", None),
        ("GET", "/api/streams/nope/consumers/c", None),
        ("GET", "/api/streams/nope/consumers/c/receive", None),
    ]:
        status, err = await api.call(method, path, body)
        assert status == 404, (method, path)
        assert err["summary"] == STREAM_404
