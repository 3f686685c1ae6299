"""``GET /api/streams/{s}/messages/sse`` against a real in-process server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from streamkit.protocol.routes import TAIL_MESSAGES
from streamkit.protocol.wire import HEARTBEAT_HEADER
from streamkit.server.state import METRICS
from streamkit.testing import ServerHandle, run_server
from tests.sse_helpers import RawTail, eventually, http_session, publish, sse_connections

SSE = "/api/streams/{}/messages/sse"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with http_session() as session:
        yield session


@pytest.fixture
async def server() -> AsyncIterator[ServerHandle]:
    async with run_server(sse_heartbeat=0.2) as handle:
        async with (
            http_session() as session,
            session.post(f"{handle.url}/api/streams", json={"name": "orders"}) as r,
        ):
            assert r.status == 201
        yield handle


async def open_tail(
    http: aiohttp.ClientSession,
    server: ServerHandle,
    stream: str = "orders",
    headers: dict[str, str] | None = None,
    **params: Any,
) -> RawTail:
    response = await http.get(server.url + SSE.format(stream), params=params, headers=headers)
    return RawTail(response)


async def test_format_headers_and_payload(
    http: aiohttp.ClientSession, server: ServerHandle
) -> None:
    await publish(http, server.url, "orders", "orders.eu.1", "orders.us.2")
    tail = await open_tail(http, server, from_seq=1)
    r = tail.response
    assert r.status == 200
    assert r.content_type == "text/event-stream"
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers[HEARTBEAT_HEADER] == "200"
    assert await tail.events_until(2) == [1, 2]
    assert tail.raw.startswith(b"retry: 1000\nid: 0\n\nid: 1\nevent: orders.eu.1\ndata: {")
    assert [e.event for e in tail.events] == ["orders.eu.1", "orders.us.2"]
    async with http.get(f"{server.url}/api/streams/orders/messages") as page:
        stored = (await page.json())["data"]
    assert tail.messages() == stored  # the data is the wire message object, unchanged
    for line in tail.raw.split(b"\n"):
        assert line == b"" or line.startswith((b"id: ", b"event: ", b"data: ", b"retry: ", b":"))
    tail.response.close()


async def test_starts_at_the_current_end(http: aiohttp.ClientSession, server: ServerHandle) -> None:
    await publish(http, server.url, "orders", "a", "b", "c")
    tail = await open_tail(http, server)
    await tail.read_until(lambda t: t.parser.last_event_id == "3")  # preamble: the cursor
    assert tail.events == []
    await publish(http, server.url, "orders", "d", "e")
    assert await tail.events_until(2) == [4, 5]
    tail.response.close()


async def test_live_messages_arrive_in_order(
    http: aiohttp.ClientSession, server: ServerHandle
) -> None:
    tail = await open_tail(http, server)
    await tail.read_until(lambda t: t.parser.last_event_id == "0")
    expected: list[int] = []
    for i in range(5):
        expected += await publish(http, server.url, "orders", *[f"k.{i}.{j}" for j in range(3)])
    assert await tail.events_until(15) == expected
    tail.response.close()


async def test_last_event_id_header_resumes_and_wins(
    http: aiohttp.ClientSession, server: ServerHandle
) -> None:
    await publish(http, server.url, "orders", *"abcde")
    # A browser reconnecting keeps its first URL (from_seq=1) and adds the header.
    tail = await open_tail(http, server, headers={"Last-Event-ID": "3"}, from_seq=1)
    assert await tail.events_until(2) == [4, 5]
    assert tail.raw.startswith(b"retry: 1000\nid: 3\n\n")
    tail.response.close()


async def test_last_event_id_query_and_from_seq(
    http: aiohttp.ClientSession, server: ServerHandle
) -> None:
    await publish(http, server.url, "orders", *"abcde")
    after = await open_tail(http, server, last_event_id=2)
    assert await after.events_until(3) == [3, 4, 5]
    after.response.close()
    inclusive = await open_tail(http, server, from_seq=2)
    assert await inclusive.events_until(4) == [2, 3, 4, 5]
    inclusive.response.close()


async def test_key_pattern_filters(http: aiohttp.ClientSession, server: ServerHandle) -> None:
    await publish(http, server.url, "orders", "orders.eu.1", "orders.us.2", "orders.eu.3")
    tail = await open_tail(http, server, from_seq=1, key_pattern="orders.eu.*")
    assert await tail.events_until(2) == [1, 3]
    await publish(http, server.url, "orders", "orders.us.4", "billing.eu.5", "orders.eu.6")
    assert await tail.events_until(3) == [1, 3, 6]
    assert {e.event for e in tail.events} == {"orders.eu.1", "orders.eu.3", "orders.eu.6"}
    tail.response.close()


async def test_event_message_leaves_names_out(
    http: aiohttp.ClientSession, server: ServerHandle
) -> None:
    await publish(http, server.url, "orders", "orders.eu.1")
    tail = await open_tail(http, server, from_seq=1, event="message")
    await tail.events_until(1)
    assert b"event:" not in tail.raw
    assert tail.events[0].event == "message"
    assert tail.messages()[0]["key"] == "orders.eu.1"
    tail.response.close()


async def test_heartbeats_on_an_idle_stream(
    http: aiohttp.ClientSession, server: ServerHandle
) -> None:
    tail = await open_tail(http, server)
    await tail.read_until(lambda t: t.parser.comments >= 3)
    assert tail.events == []
    assert tail.raw.count(b": keepalive\n\n") >= 3
    tail.response.close()


async def test_batches_larger_than_a_page(
    http: aiohttp.ClientSession, server: ServerHandle
) -> None:
    expected: list[int] = []
    for i in range(3):
        expected += await publish(http, server.url, "orders", *[f"k.{i}"] * 1000)
    tail = await open_tail(http, server, from_seq=1)
    assert await tail.events_until(3000) == expected
    tail.response.close()
    await eventually(lambda: server.app[METRICS].sse_events.value() == 3000)


async def test_unknown_stream_is_404(http: aiohttp.ClientSession, server: ServerHandle) -> None:
    for params in ({}, {"from_seq": "1"}):
        async with http.get(server.url + SSE.format("nope"), params=params) as r:
            assert r.status == 404
            assert "No `stream` found" in (await r.json())["summary"]


@pytest.mark.parametrize(
    ("params", "headers", "param"),
    [
        ({"from_seq": "-3"}, {}, "from_seq"),
        ({"last_event_id": "x"}, {}, "last_event_id"),
        ({}, {"Last-Event-ID": "not-a-seq"}, "Last-Event-ID"),
        ({"key_pattern": "a..b"}, {}, "key_pattern"),
        ({"event": "other"}, {}, "event"),
    ],
)
async def test_bad_parameters_are_400(
    http: aiohttp.ClientSession,
    server: ServerHandle,
    params: dict[str, str],
    headers: dict[str, str],
    param: str,
) -> None:
    async with http.get(server.url + SSE.format("orders"), params=params, headers=headers) as r:
        assert r.status == 400
        assert (await r.json())["param"] == param


async def test_auth_applies(http: aiohttp.ClientSession) -> None:
    async with run_server(api_key="s3cret") as server:
        headers = {"Authorization": "Bearer s3cret"}
        async with http.post(
            f"{server.url}/api/streams", json={"name": "orders"}, headers=headers
        ) as r:
            assert r.status == 201
        async with http.get(server.url + SSE.format("orders")) as r:
            assert r.status == 401
        tail = await open_tail(http, server, headers=headers)
        assert tail.response.status == 200
        tail.response.close()


async def test_stream_deleted_ends_the_tail(
    http: aiohttp.ClientSession, server: ServerHandle
) -> None:
    tail = await open_tail(http, server)
    await tail.read_until(lambda t: t.parser.last_event_id == "0")
    async with http.delete(f"{server.url}/api/streams/orders") as r:
        assert r.status == 200
    await tail.until_end()
    assert tail.ended
    await eventually(lambda: sse_connections(server) == 0)


async def test_server_shutdown_ends_the_tail(http: aiohttp.ClientSession) -> None:
    async with run_server(sse_heartbeat=3600) as server:
        async with http.post(f"{server.url}/api/streams", json={"name": "orders"}) as r:
            assert r.status == 201
        tail = await open_tail(http, server)
        await tail.read_until(lambda t: t.parser.last_event_id == "0")
        reading = asyncio.create_task(tail.until_end(), name="read-tail")
    await asyncio.wait_for(reading, 10)
    assert tail.ended
    # It ended by itself (200), not by being cancelled at the shutdown timeout (499).
    requests = server.app[METRICS].requests
    assert requests.value(("GET", TAIL_MESSAGES.path, "200")) == 1
    assert requests.value(("GET", TAIL_MESSAGES.path, "499")) == 0


async def test_client_disconnect_is_detected(
    http: aiohttp.ClientSession, server: ServerHandle
) -> None:
    tails = [await open_tail(http, server) for _ in range(3)]
    for tail in tails:
        await tail.read_until(lambda t: t.parser.last_event_id == "0")
    assert sse_connections(server) == 3
    for tail in tails:
        tail.response.close()
    await eventually(lambda: sse_connections(server) == 0)
    # The handlers ended: nothing keeps writing to the closed connections.
    await publish(http, server.url, "orders", "a")
    assert sse_connections(server) == 0


async def test_client_gone_before_the_headers_is_quiet(
    http: aiohttp.ClientSession,
    server: ServerHandle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The client goes away between the tail's first read and its headers: the
    # transport is closing when the answer is prepared, and aiohttp's prepare
    # raises ClientConnectionResetError (a ConnectionResetError).
    prepare = web.StreamResponse.prepare

    async def closed_first(self: web.StreamResponse, request: web.BaseRequest) -> Any:
        if self.content_type == "text/event-stream" and request.transport is not None:
            request.transport.close()
        return await prepare(self, request)

    monkeypatch.setattr(web.StreamResponse, "prepare", closed_first)
    with pytest.raises(aiohttp.ClientError):
        tail = await open_tail(http, server)
        await tail.read_until(lambda t: t.parser.last_event_id == "0")
    monkeypatch.undo()
    await eventually(lambda: sse_connections(server) == 0)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # The server goes on serving tails.
    tail = await open_tail(http, server)
    await tail.read_until(lambda t: t.parser.last_event_id == "0")
    tail.response.close()
