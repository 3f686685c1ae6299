"""Streams: create, list, get, delete, stats, validation, 404s."""

from __future__ import annotations

import uuid

from tests.http_api import Api, msgs

from .helpers import Engine


async def test_create_stream_shape(api: Api) -> None:
    body = await api.stream("orders")
    uuid.UUID(body["id"])
    uuid.UUID(body["account_id"])
    assert body["name"] == "orders"
    assert body["inserted_at"] and body["updated_at"]
    assert body["stats"] == {"message_count": 0, "consumer_count": 0, "storage_size": 0}
    assert body["one_message_per_key"] is False and body["process_unmodified"] is False


async def test_create_with_options(api: Api) -> None:
    body = await api.stream("kv", one_message_per_key=True, process_unmodified=True)
    assert body["one_message_per_key"] is True and body["process_unmodified"] is True
    again = await api.ok("GET", "/api/streams/kv")
    assert again["one_message_per_key"] is True and again["process_unmodified"] is True


async def test_duplicate_name_is_422(api: Api) -> None:
    await api.stream("orders")
    status, err = await api.call("POST", "/api/streams", {"name": "orders"})
    assert status == 422
    assert err["validation_errors"] == {"name": ["has already been taken"]}


async def test_list_get_delete(api: Api) -> None:
    a = await api.stream("a")
    b = await api.stream("b")
    listed = await api.ok("GET", "/api/streams")
    assert [s["name"] for s in listed["data"]] == ["a", "b"]
    assert (await api.ok("GET", "/api/streams/a"))["id"] == a["id"]
    assert (await api.ok("GET", f"/api/streams/{b['id']}"))["name"] == "b"
    assert await api.ok("DELETE", f"/api/streams/{a['id']}") == {"id": a["id"], "deleted": True}
    status, err = await api.call("GET", "/api/streams/a")
    assert status == 404
    assert err["summary"] == "Not found: No `stream` found matching the provided ID or name"
    assert (await api.call("GET", f"/api/streams/{a['id']}"))[0] == 404
    assert (await api.call("DELETE", "/api/streams/a"))[0] == 404
    assert [s["name"] for s in (await api.ok("GET", "/api/streams"))["data"]] == ["b"]


async def test_delete_removes_messages_and_consumers(api: Api) -> None:
    first = await api.stream("orders")
    await api.consumer()
    await api.publish("orders", msgs("a", "b"))
    await api.ok("DELETE", "/api/streams/orders")
    second = await api.stream("orders")
    assert second["id"] != first["id"]
    assert await api.read() == []
    assert (await api.ok("GET", "/api/streams/orders/consumers"))["data"] == []
    assert (await api.call("GET", f"/api/streams/{first['id']}"))[0] == 404
    published = await api.publish("orders", msgs("c"))
    assert published["acks"][0]["seq"] == 1


async def test_stats(api: Api) -> None:
    await api.stream("orders")
    await api.publish("orders", msgs("a", "b", "c"))
    await api.consumer(name="one")
    await api.consumer(name="two")
    stats = (await api.ok("GET", "/api/streams/orders"))["stats"]
    assert stats["message_count"] == 3
    assert stats["consumer_count"] == 2
    assert stats["storage_size"] > 0
    listed = (await api.ok("GET", "/api/streams"))["data"][0]["stats"]
    assert listed["message_count"] == 3


async def test_stream_validation(api: Api) -> None:
    for bad in ["", "has space", "dot.ted", "x" * 129, "star*", 7, None]:
        status, err = await api.call("POST", "/api/streams", {"name": bad})
        assert status == 422, bad
        assert "name" in err["validation_errors"]
    status, _ = await api.call("POST", "/api/streams", {"name": "ok", "one_message_per_key": 1})
    assert status == 422
    assert (await api.ok("GET", "/api/streams"))["data"] == []


async def test_unknown_stream_404_everywhere(api: Api) -> None:
    ghost = str(uuid.uuid4())
    for ref in ["nope", ghost, "weird.name", "%3E"]:
        base = f"/api/streams/{ref}"
        calls = [
            ("GET", base, None),
            ("DELETE", base, None),
            ("POST", base + "/messages", {"messages": [{"key": "a", "data": "b"}]}),
            ("GET", base + "/messages", None),
            ("POST", base + "/consumers", {"name": "c", "filter_key_pattern": ">"}),
            ("GET", base + "/consumers", None),
            ("GET", base + "/consumers/c", None),
            ("GET", base + "/consumers/c/receive", None),
            ("POST", base + "/consumers/c/ack", {"ack_ids": ["x"]}),
            ("POST", base + "/consumers/c/nack", {"ack_ids": ["x"]}),
            ("POST", base + "/consumers/c/extend", {"ack_ids": ["x"]}),
        ]
        for method, path, body in calls:
            status, err = await api.call(method, path, body)
            assert status == 404, (method, path, status, err)
            assert err["code"] == "not_found"


async def test_closed_store_is_503(api: Api, engine: Engine) -> None:
    await api.stream("orders")
    await engine.store.close()
    status, err = await api.call(
        "POST", "/api/streams/orders/messages", {"messages": [{"key": "a", "data": "b"}]}
    )
    assert status == 503
    assert err["code"] == "unavailable"
