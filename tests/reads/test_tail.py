"""``client.tail()``: live delivery, filters, errors, and resuming after cuts and restarts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import streamkit
from streamkit import Event
from streamkit.testing import ServerHandle, run_server
from tests.sse_helpers import Proxy, eventually, sse_connections

FAST: dict[str, Any] = {"backoff": 0.01, "max_backoff": 0.1}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    async with run_server(tmp_path / "db", sse_heartbeat=0.2) as handle:
        yield handle


@pytest.fixture
async def client(server: ServerHandle) -> AsyncIterator[streamkit.AsyncClient]:
    async with streamkit.connect(server.url, timeout=5.0) as c:
        await c.create_stream("orders")
        yield c


async def collect(events: AsyncIterator[Event], count: int, into: list[Event]) -> None:
    async with contextlib.aclosing(events):  # type: ignore[type-var]
        async for event in events:
            into.append(event)
            if len(into) >= count:
                return


def start(events: AsyncIterator[Event], count: int) -> tuple[asyncio.Task[None], list[Event]]:
    got: list[Event] = []
    return asyncio.create_task(collect(events, count, got), name="collect-tail"), got


async def send(client: streamkit.AsyncClient, *keys: str) -> list[int]:
    acks = await client.send("orders", [Event({"n": i}, key=k) for i, k in enumerate(keys)])
    return [a.seq for a in acks]


async def test_live_events_from_now_on(client: streamkit.AsyncClient, server: ServerHandle) -> None:
    await send(client, "orders.old")
    task, got = start(client.tail("orders", **FAST), 3)
    await eventually(lambda: sse_connections(server) == 1)
    seqs = await send(client, "orders.eu.1", "orders.eu.2", "orders.us.3")
    await asyncio.wait_for(task, 10)
    assert [e.seq for e in got] == seqs
    assert [e.key for e in got] == ["orders.eu.1", "orders.eu.2", "orders.us.3"]
    assert [e.data for e in got] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert all(e.stream == "orders" and e.ack_id is None for e in got)
    await eventually(lambda: sse_connections(server) == 0)  # aclosing closed the response


async def test_payload_types_round_trip(client: streamkit.AsyncClient) -> None:
    await client.send(
        "orders",
        [Event("plain\ntext", key="t"), Event(b"\x00\xffbin", key="b"), Event([1, "x"], key="j")],
    )
    task, got = start(client.tail("orders", from_seq=1), 3)
    await asyncio.wait_for(task, 10)
    assert [e.data for e in got] == ["plain\ntext", b"\x00\xffbin", [1, "x"]]


async def test_from_seq_and_key_pattern(client: streamkit.AsyncClient) -> None:
    await send(client, "orders.eu.1", "orders.us.2", "orders.eu.3", "orders.eu.4")
    task, got = start(client.tail("orders", "orders.eu.*", 3), 3)
    await asyncio.sleep(0)
    more = await send(client, "orders.us.5", "orders.eu.6")
    await asyncio.wait_for(task, 10)
    assert [e.seq for e in got] == [3, 4, more[1]]


async def test_unknown_stream_raises_not_found(client: streamkit.AsyncClient) -> None:
    with pytest.raises(streamkit.NotFound):
        async for _ in client.tail("nope"):
            pass


async def test_bad_filter_raises(client: streamkit.AsyncClient) -> None:
    with pytest.raises(streamkit.BadRequest):
        async for _ in client.tail("orders", key_pattern="a..b"):
            pass


async def test_missing_api_key_raises_unauthorized() -> None:
    async with (
        run_server(api_key="k") as server,
        streamkit.connect(server.url, api_key="wrong") as c,
    ):
        with pytest.raises(streamkit.Unauthorized):
            async for _ in c.tail("orders"):
                pass


async def test_resumes_after_a_server_restart(tmp_path: Path) -> None:
    db = tmp_path / "restart.db"
    async with run_server(db, sse_heartbeat=0.2) as first:
        port = int(first.url.rsplit(":", 1)[1])
        client = streamkit.connect(first.url, timeout=5.0)
        await client.create_stream("orders")
        first_seqs = await send(client, "a.1", "a.2")
        task, got = start(client.tail("orders", from_seq=1, **FAST), 5)
        await eventually(lambda: len(got) == 2)
    # The server is gone; the tail keeps trying. Same database, same port:
    async with run_server(db, port=port, sse_heartbeat=0.2) as second:
        more = await send(client, "b.3", "b.4", "b.5")
        await asyncio.wait_for(task, 15)
        await eventually(lambda: sse_connections(second) == 0)
    await client.close()
    assert [e.seq for e in got] == first_seqs + more  # no gap, no duplicate


async def test_resumes_after_the_connection_is_cut(
    client: streamkit.AsyncClient, server: ServerHandle
) -> None:
    async with (
        Proxy(int(server.url.rsplit(":", 1)[1])) as proxy,
        streamkit.connect(proxy.url, timeout=5.0) as via_proxy,
    ):
        task, got = start(via_proxy.tail("orders", **FAST), 6)
        await eventually(lambda: sse_connections(server) == 1)
        seqs = await send(client, "k.1", "k.2", "k.3")
        await eventually(lambda: len(got) == 3)
        proxy.cut()
        seqs += await send(client, "k.4", "k.5")  # stored while disconnected
        await eventually(lambda: len(proxy.links) >= 2)
        seqs += await send(client, "k.6")
        await asyncio.wait_for(task, 10)
    assert [e.seq for e in got] == seqs
    reconnect = proxy.requests[1].decode()
    assert f"last-event-id: {seqs[2]}" in reconnect.lower()


async def test_resumes_before_the_first_event_without_a_gap(
    client: streamkit.AsyncClient, server: ServerHandle
) -> None:
    # Cut before any event: the preamble's cursor is where the reconnect resumes.
    await send(client, "old.1", "old.2")
    async with (
        Proxy(int(server.url.rsplit(":", 1)[1])) as proxy,
        streamkit.connect(proxy.url, timeout=5.0) as via_proxy,
    ):
        task, got = start(via_proxy.tail("orders", **FAST), 2)
        await eventually(lambda: sse_connections(server) == 1)
        await eventually(lambda: proxy.links[0].forwarded > 0)  # the preamble is on its way
        proxy.cut(graceful=True)  # the client reads what was sent, then the end
        seqs = await send(client, "new.3", "new.4")
        await asyncio.wait_for(task, 10)
    assert [e.seq for e in got] == seqs
    assert "last-event-id: 2" in proxy.requests[1].decode().lower()


async def test_stalled_connection_is_replaced(
    client: streamkit.AsyncClient, server: ServerHandle
) -> None:
    async with (
        Proxy(int(server.url.rsplit(":", 1)[1])) as proxy,
        streamkit.connect(proxy.url, timeout=5.0) as via_proxy,
    ):
        # Server heartbeat 0.2 s -> idle timeout 0.6 s by default.
        task, got = start(via_proxy.tail("orders", **FAST), 2)
        await eventually(lambda: sse_connections(server) == 1)
        seqs = await send(client, "s.1")
        await eventually(lambda: len(got) == 1)
        proxy.stall()  # the peer goes silent, the TCP connection stays up
        seqs += await send(client, "s.2")
        await asyncio.wait_for(task, 10)
    assert [e.seq for e in got] == seqs
    assert len(proxy.links) >= 2


async def test_client_close_ends_a_running_tail(
    client: streamkit.AsyncClient, server: ServerHandle
) -> None:
    other = streamkit.connect(server.url)
    task, _ = start(other.tail("orders", **FAST), 1)
    await eventually(lambda: sse_connections(server) == 1)
    await other.close()
    with pytest.raises(streamkit.ClientClosed):
        await asyncio.wait_for(task, 10)


# -- against fake servers -----------------------------------------------------------


@contextlib.asynccontextmanager
async def fake_server(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/api/streams/{stream}/messages/sse", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


MESSAGE = (
    b'{"key":"k","stream_id":"s","data":"x","data_hash":"h","seq":%d,'
    b'"inserted_at":"2024-07-01T12:00:00Z","updated_at":"2024-07-01T12:00:00Z"}'
)


async def sse_response(request: web.Request, body: bytes) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(body)
    return response


async def test_transient_failures_are_retried() -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Last-Event-ID"))
        n = len(seen)
        if n == 1:
            return web.Response(status=503, headers={"Retry-After": "0"}, text="busy")
        if n == 2:
            return web.Response(text="<html>proxy error</html>", content_type="text/html")
        if n == 3:  # one event, then the server ends the stream
            return await sse_response(request, b"id: 7\ndata: " + MESSAGE % 7 + b"\n\n")
        return await sse_response(request, b"id: 8\r\ndata: " + MESSAGE % 8 + b"\r\n\r\n")

    async with fake_server(handler) as url, streamkit.connect(url) as c:
        task, got = start(c.tail("orders", **FAST), 2)
        await asyncio.wait_for(task, 10)
    assert [e.seq for e in got] == [7, 8]
    assert seen[:4] == [None, None, None, "7"]


async def test_malformed_event_raises_decode_error() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, b"id: 1\ndata: not json\n\n")

    async with fake_server(handler) as url, streamkit.connect(url) as c:
        with pytest.raises(streamkit.DecodeError):
            async for _ in c.tail("orders", **FAST):
                pass


async def test_idle_timeout_can_be_set(client: streamkit.AsyncClient) -> None:
    calls = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if calls < 3:
            await asyncio.sleep(3600)  # silent: the client must give up on it
        await response.write(b"id: 1\ndata: " + MESSAGE % 1 + b"\n\n")
        return response

    async with fake_server(handler) as url, streamkit.connect(url) as c:
        task, got = start(c.tail("orders", idle_timeout=0.1, **FAST), 1)
        await asyncio.wait_for(task, 10)
    assert calls == 3 and [e.seq for e in got] == [1]
