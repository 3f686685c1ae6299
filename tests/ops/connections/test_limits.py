"""Connections are bounded: idle and header timeouts, and a cap answered with a clear 503.

In-process servers with small limits; raw sockets (`tests.ops.raw_http`) play
the clients no library would be: silent ones, slow ones, too many of them.
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from streamkit.testing import run_server
from tests.http_api import Api
from tests.ops.raw_http import (
    CLOSE_MARGIN,
    Connection,
    connections,
    eof,
    exchange,
    half_a_request_line,
    ping,
    port_of,
    request,
)


async def test_idle_keep_alive_connections_are_closed_after_the_idle_timeout() -> None:
    async with (
        run_server(idle_timeout=1.0, header_timeout=60.0) as server,
        connections(port_of(server), 20, ping) as idle,
    ):
        closed = await asyncio.gather(*(eof(r, 1.0 + CLOSE_MARGIN) for r, _ in idle))
        assert closed == [b""] * 20  # closed quietly: nothing was pending


async def test_a_stalled_next_request_on_a_kept_alive_connection_is_closed_as_idle() -> None:
    async def ping_then_stall(conn: Connection) -> None:
        await ping(conn)
        await half_a_request_line(conn)

    async with (
        run_server(idle_timeout=1.0, header_timeout=60.0) as server,
        connections(port_of(server), 20, ping_then_stall) as stalled,
    ):
        closed = await asyncio.gather(*(eof(r, 1.0 + CLOSE_MARGIN) for r, _ in stalled))
        assert closed == [b""] * 20


async def test_silent_new_connections_are_closed_after_the_header_timeout() -> None:
    async with (
        run_server(idle_timeout=60.0, header_timeout=1.0) as server,
        connections(port_of(server), 20) as silent,
    ):
        closed = await asyncio.gather(*(eof(r, 1.0 + CLOSE_MARGIN) for r, _ in silent))
        assert closed == [b""] * 20


async def test_a_slow_request_head_gets_408_and_is_closed() -> None:
    async with (
        run_server(idle_timeout=60.0, header_timeout=1.0) as server,
        connections(port_of(server), 20, half_a_request_line) as slow,
    ):
        answers = await asyncio.gather(*(eof(r, 1.0 + CLOSE_MARGIN) for r, _ in slow))
        for answer in answers:
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 "), answer
            assert orjson.loads(body)["code"] == "request_timeout"


async def test_the_header_timeout_spares_requests_that_take_longer() -> None:
    """A long-poll outlives the header timeout: only the head has a deadline."""
    async with (
        run_server(idle_timeout=60.0, header_timeout=0.5) as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, server.url)
        await api.stream("orders")
        await api.consumer("orders", "billing")
        got = await api.receive("orders", "billing", wait_for=1500)
        assert got == []
        assert (await api.ok("GET", "/api/ping"))["ok"] is True  # the same pooled connection


async def test_past_the_cap_a_new_connection_gets_503_and_is_closed() -> None:
    cap = 20
    async with run_server(max_connections=cap) as server:
        port = port_of(server)
        async with connections(port, cap, ping) as served:
            # Flood: every connection past the cap is answered at once and closed.
            flood = await asyncio.gather(*(exchange(port, request()) for _ in range(100)))
            for response, closed in flood:
                assert response.status == 503, response
                assert response.headers["retry-after"] == "1"
                assert response.json() == {
                    "summary": "Service unavailable: too many open connections; retry later",
                    "code": "too_many_connections",
                }
                assert closed
            for conn in served:  # the connections within the cap are still served
                await ping(conn)
        # Those closed, a new connection is served again.
        for _ in range(100):
            response, _ = await exchange(port, request(), until_closed=False)
            if response.status == 200:
                break
            await asyncio.sleep(0.05)
        assert response.status == 200, response
