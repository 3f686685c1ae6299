"""Raw HTTP/1.1 over asyncio streams, for tests that send what no client library would.

Also many connections at once (`connections`), each opened with a first
step: a whole request (`ping`), half a request line (`half_a_request_line`)
or nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from streamkit.testing import ServerHandle

EXCHANGE_TIMEOUT = 10.0
"""Seconds any one raw exchange may take before the test fails (never a hang)."""


@dataclass
class RawResponse:
    """A response read off a socket: status line, headers (lower-cased names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)


def request(path: str = "/api/ping", method: str = "GET", extra: bytes = b"") -> bytes:
    """A minimal keep-alive HTTP/1.1 request for ``path``."""
    return f"{method} {path} HTTP/1.1\r\nHost: streamkit\r\n".encode() + extra + b"\r\n"


async def read_response(reader: asyncio.StreamReader) -> RawResponse:
    """One response (``Content-Length`` framed, as every answer of the server is)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), EXCHANGE_TIMEOUT)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), EXCHANGE_TIMEOUT)
    return RawResponse(status, headers, body)


async def exchange(port: int, raw: bytes, *, until_closed: bool = True) -> tuple[RawResponse, bool]:
    """Send ``raw`` on a new connection and read one response.

    With ``until_closed`` also wait (bounded) for the server to close the
    connection and say whether it did; else just hang up.
    """
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port), EXCHANGE_TIMEOUT
    )
    try:
        writer.write(raw)
        response = await read_response(reader)
        if not until_closed:
            return response, False
        try:
            closed = await asyncio.wait_for(reader.read(1), EXCHANGE_TIMEOUT) == b""
        except ConnectionError:
            closed = True
        return response, closed
    finally:
        writer.close()


async def eof(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (fails after ``timeout``)."""

    async def until_closed() -> bytes:
        received = b""
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionError:
                return received
            if not chunk:
                return received
            received += chunk

    return await asyncio.wait_for(until_closed(), timeout)


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]

CLOSE_MARGIN = 10.0
"""Seconds past a timeout a connection may take to be closed before the test fails."""


def port_of(server: ServerHandle) -> int:
    """The port of an in-process server."""
    return int(server.url.rsplit(":", 1)[1])


@asynccontextmanager
async def connections(
    port: int, count: int, first: Callable[[Connection], Awaitable[Any]] | None = None
) -> AsyncIterator[list[Connection]]:
    """``count`` open connections (each given ``first`` to do), all closed on exit."""
    opened: list[Connection] = []
    try:
        for _ in range(count):
            conn = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), EXCHANGE_TIMEOUT
            )
            opened.append(conn)
            if first is not None:
                await first(conn)
        yield opened
    finally:
        for _, writer in opened:
            writer.close()


async def ping(conn: Connection) -> None:
    reader, writer = conn
    writer.write(request("/api/ping"))
    response = await read_response(reader)
    assert response.status == 200, response


async def half_a_request_line(conn: Connection) -> None:
    conn[1].write(b"GET /api/pi")
    await conn[1].drain()
