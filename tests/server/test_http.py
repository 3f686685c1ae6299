"""Cross-cutting HTTP behaviour: health, ping, auth, limits, malformed requests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from streamkit.testing import run_server
from tests.http_api import Api


async def test_health_and_ping(api: Api) -> None:
    assert await api.ok("GET", "/health") == {"ok": True, "status": "ok"}
    ping = await api.ok("GET", "/api/ping")
    assert ping["ok"] is True
    assert isinstance(ping["version"], str)


async def test_unknown_route_is_json_404(api: Api) -> None:
    status, body = await api.call("GET", "/api/nope")
    assert status == 404
    assert body["code"] == "not_found"
    assert "/api/nope" in body["summary"]


async def test_wrong_method_is_json_405(api: Api) -> None:
    status, body = await api.call("PUT", "/api/streams")
    assert status == 405
    assert body["code"] == "method_not_allowed"


async def test_malformed_json_is_400(api: Api) -> None:
    status, body = await api.call(
        "POST", "/api/streams", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert body["code"] == "malformed_json"
    assert "Malformed JSON" in body["summary"]


async def test_missing_body_is_400(api: Api) -> None:
    status, body = await api.call("POST", "/api/streams")
    assert status == 400
    assert body["code"] == "malformed_json"


async def test_body_must_be_an_object(api: Api) -> None:
    status, body = await api.call("POST", "/api/streams", ["orders"])
    assert status == 422
    assert body["validation_errors"] == {"body": ["must be a JSON object"]}


async def test_auth_required_everywhere_but_health() -> None:
    async with run_server(api_key="s3cret") as server, aiohttp.ClientSession() as session:
        api = Api(session, server.url)
        assert await api.ok("GET", "/health") == {"ok": True, "status": "ok"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            status, body = await api.call("GET", "/api/ping", headers=headers)
            assert status == 401
            assert body["code"] == "unauthorized"
        status, body = await api.call("POST", "/api/streams", {"name": "x"})
        assert status == 401
        status, body = await api.call("GET", "/api/unknown")
        assert status == 401  # no route probing without a key
        good = {"Authorization": "Bearer s3cret"}
        status, body = await api.call("POST", "/api/streams", {"name": "x"}, headers=good)
        assert status == 201
        status, body = await api.call("GET", "/api/streams", headers=good)
        assert status == 200
        assert [s["name"] for s in body["data"]] == ["x"]


async def test_payload_too_large_is_413_and_stores_nothing() -> None:
    async with run_server(max_body_bytes=4096) as server, aiohttp.ClientSession() as session:
        api = Api(session, server.url)
        await api.stream("orders")
        big = {"messages": [{"key": "a", "data": "x" * 10_000}]}
        status, body = await api.call("POST", "/api/streams/orders/messages", big)
        assert status == 413
        assert body["code"] == "payload_too_large"
        stream = await api.ok("GET", "/api/streams/orders")
        assert stream["stats"]["message_count"] == 0
        # the server is still fine afterwards
        assert (await api.publish("orders", [{"key": "a", "data": "x"}]))["published"] == 1


async def test_chunked_bodies_are_read_whole_and_bounded() -> None:
    """A body sent in HTTP chunks, without a length, is read like any other: a large
    one whole, and one past ``max_body_bytes`` refused with 413."""

    async def chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start : start + size]

    messages = [{"key": f"k{i}", "data": "é" * 20_000} for i in range(100)]
    body = orjson.dumps({"messages": messages})
    async with (
        run_server(max_body_bytes=len(body) + 1) as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, server.url)
        await api.stream("orders")
        url = f"{server.url}/api/streams/orders/messages"
        headers = {"Content-Type": "application/json"}
        async with session.post(url, data=chunks(body, 7_000), headers=headers) as response:
            assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
            assert response.status == 200, await response.text()
        stored = await api.read("orders", limit=1000)
        assert [m["data"] for m in stored] == [m["data"] for m in messages]
        too_big = orjson.dumps({"messages": [*messages, {"key": "k", "data": "x"}]})
        async with session.post(url, data=chunks(too_big, 7_000), headers=headers) as response:
            assert response.status == 413
            assert (await response.json())["code"] == "payload_too_large"
        assert (await api.ok("GET", "/api/streams/orders"))["stats"]["message_count"] == 100


async def test_out_of_range_numbers_are_rejected_not_500(api: Api) -> None:
    await api.stream("orders")
    await api.consumer("orders", "c")
    huge = "99999999999999999999999"
    status, err = await api.call("GET", "/api/streams/orders/messages", params={"after_seq": huge})
    assert (status, err["param"]) == (400, "after_seq")
    status, err = await api.call(
        "POST",
        "/api/streams/orders/consumers",
        {"name": "d", "filter_key_pattern": ">", "start": 2**63},
    )
    assert status == 422 and "start" in err["validation_errors"]
    status, err = await api.call("POST", "/api/streams", {"name": "x", "retain_up_to": 2**64 - 1})
    assert status == 422 and "retain_up_to" in err["validation_errors"]
    await api.ack([f"{huge}.token", "-1.x", "١٢.x"], "orders", "c")


async def test_store_unavailable_is_503() -> None:
    async with run_server() as server, aiohttp.ClientSession() as session:
        api = Api(session, server.url)
        await api.stream("orders")
        await server.store.close()
        status, err = await api.call(
            "POST", "/api/streams/orders/messages", {"messages": [{"key": "a", "data": "b"}]}
        )
        assert status == 503
        assert err["code"] == "unavailable"


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    from streamkit.cli import main

    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--db", "--api-key", "--synchronous"):
        assert option in out
