"""Limits the server enforces itself: message size (413) and HTTP it cannot parse (JSON 4xx).

A message whose ``data`` is over ``max_message_bytes`` is refused with 413
naming it (``messages[3].data``) and nothing of its batch is stored; HTTP the
parser rejects is answered with the API's JSON error body and the status that
names the problem, never quoting the input.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from streamkit.protocol.wire import MAX_MESSAGE_BYTES
from streamkit.server.engines import create_store
from streamkit.server.http_errors import MAX_HEADER_BYTES, MAX_URL_BYTES
from streamkit.server.runner import start_server
from streamkit.testing import ServerHandle, run_server
from tests.http_api import Api
from tests.nats_server import NatsServer, require_binary
from tests.ops.raw_http import exchange, port_of, request

MARKER = "ECHOCANARY"
"""Planted in every malformed request: it must never come back in an answer."""


@pytest.fixture
async def server() -> AsyncIterator[ServerHandle]:
    async with run_server() as handle:
        yield handle


@pytest.fixture
async def api(server: ServerHandle) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, server.url)


def batch(*datas: str) -> dict[str, Any]:
    return {"messages": [{"key": "orders.eu", "data": d} for d in datas]}


async def stored(api: Api, stream: str = "orders") -> int:
    body = await api.ok("GET", f"/api/streams/{stream}")
    count: int = body["stats"]["message_count"]
    return count


async def test_a_message_over_the_default_limit_is_413_and_stores_nothing(api: Api) -> None:
    await api.stream("orders")
    big = "x" * (10 * 1024 * 1024)  # 10 MiB: under the 16 MiB body limit, over the 1 MiB one
    status, body = await api.call(
        "POST", "/api/streams/orders/messages", batch("a", "b", "c", big, "e")
    )
    assert status == 413, body
    assert body["code"] == "message_too_large"
    assert list(body["validation_errors"]) == ["messages[3].data"]
    assert str(MAX_MESSAGE_BYTES) in body["summary"]
    assert await stored(api) == 0


async def test_filled_to_the_limit_is_stored_one_byte_over_is_not(api: Api) -> None:
    await api.stream("orders")
    at_limit = "x" * MAX_MESSAGE_BYTES
    assert (await api.publish("orders", batch(at_limit)["messages"]))["published"] == 1
    # Bytes, not characters: 512 Ki two-byte characters and one more byte.
    over_in_bytes = "é" * (MAX_MESSAGE_BYTES // 2) + "x"
    assert len(over_in_bytes) < MAX_MESSAGE_BYTES
    status, body = await api.call("POST", "/api/streams/orders/messages", batch(over_in_bytes))
    assert status == 413, body
    assert list(body["validation_errors"]) == ["messages[0].data"]
    assert await stored(api) == 1


async def test_flooded_batch_names_every_message_over_the_configured_limit() -> None:
    async with run_server(max_message_bytes=1000) as server, aiohttp.ClientSession() as session:
        api = Api(session, server.url)
        await api.stream("orders")
        datas = ["y" * 1001 if i % 2 else "y" * 1000 for i in range(200)]
        status, body = await api.call("POST", "/api/streams/orders/messages", batch(*datas))
        assert status == 413, body
        assert sorted(body["validation_errors"]) == sorted(
            f"messages[{i}].data" for i in range(1, 200, 2)
        )
        assert await stored(api) == 0
        # The same messages at the limit all go in, in one batch.
        status, body = await api.call(
            "POST", "/api/streams/orders/messages", batch(*["y" * 1000] * 200)
        )
        assert status == 200, body
        assert await stored(api) == 200


MALFORMED: list[tuple[str, bytes, int]] = [
    ("long-url", request("/api/streams/" + MARKER * (2 * MAX_URL_BYTES // len(MARKER))), 414),
    (
        "long-header",
        request(extra=f"X-Big: {MARKER * (2 * MAX_HEADER_BYTES // len(MARKER))}\r\n".encode()),
        431,
    ),
    (
        "long-header-name",
        request(extra=f"X-{MARKER * (2 * MAX_HEADER_BYTES // len(MARKER))}: 1\r\n".encode()),
        431,
    ),
    ("many-headers", request(extra=f"X-{MARKER}: v\r\n".encode() * 300), 431),
    ("garbage", f"{MARKER}\r\n\r\n".encode(), 400),
    ("tls-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + MARKER.encode() * 8, 400),
    ("bad-version", f"GET /{MARKER} HTTP/9.9\r\nHost: x\r\n\r\n".encode(), 400),
    ("bad-header", request(extra=f"Bad {MARKER}: 1\r\n".encode()), 400),
    (
        "two-lengths",
        request(f"/{MARKER}", "POST", b"Content-Length: 5\r\nContent-Length: 6\r\n"),
        400,
    ),
    (
        "bad-chunk",
        request(f"/{MARKER}", "POST", b"Transfer-Encoding: chunked\r\n") + f"{MARKER}\r\n".encode(),
        400,
    ),
]


@pytest.mark.parametrize(
    ("raw", "status"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
async def test_http_the_parser_rejects_gets_the_json_error_body(
    server: ServerHandle, raw: bytes, status: int
) -> None:
    response, closed = await exchange(port_of(server), raw)
    assert response.status == status, response
    assert response.headers["content-type"].startswith("application/json"), response
    body = response.json()
    assert isinstance(body, dict)
    assert body["code"] == "bad_request", body
    assert body["summary"], body
    assert MARKER.encode() not in response.body and MARKER.lower().encode() not in response.body
    assert closed, "the server keeps a connection whose framing it cannot trust"


async def test_the_server_keeps_serving_after_parser_errors(server: ServerHandle) -> None:
    for _, raw, _ in MALFORMED:
        await exchange(port_of(server), raw)
    response, _ = await exchange(port_of(server), request("/api/ping"), until_closed=False)
    assert response.status == 200


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(binary=require_binary(), store_dir=tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_the_size_limit_holds_on_the_jetstream_engine_too(nats: NatsServer) -> None:
    store = create_store("jetstream", nats_urls=nats.url, nats_prefix="limits")
    running = await start_server(store, max_message_bytes=1000)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, running.url, "jetstream")
            await api.stream("orders")
            status, body = await api.call(
                "POST", "/api/streams/orders/messages", batch("a", "b", "y" * 1001)
            )
            assert status == 413, body
            assert list(body["validation_errors"]) == ["messages[2].data"]
            assert await stored(api) == 0
            assert (await api.publish("orders", batch("y" * 1000)["messages"]))["published"] == 1
    finally:
        await running.close()
