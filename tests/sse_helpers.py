"""Helpers for the live-tail tests: a raw SSE reader, polling, and a loopback TCP proxy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from streamkit._http.sse_parser import ServerSentEvent, SSEParser
from streamkit.server.state import METRICS
from streamkit.testing import ServerHandle


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds (a bound, not a speed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def sse_connections(server: ServerHandle) -> float:
    """Live tails the server has open now."""
    return server.app[METRICS].sse_connections.value()


async def publish(
    http: aiohttp.ClientSession, url: str, stream: str, *keys: str, prefix: str = "d"
) -> list[int]:
    """Publish one message per key (data ``f"{prefix}{i}"``); return their seqs."""
    messages = [{"key": k, "data": f"{prefix}{i}"} for i, k in enumerate(keys)]
    async with http.post(f"{url}/api/streams/{stream}/messages", json={"messages": messages}) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    return [ack["seq"] for ack in body["data"]["acks"]]


class RawTail:
    """Reads a live tail response with the client's parser, a chunk at a time."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.parser = SSEParser()
        self.events: list[ServerSentEvent] = []
        self.raw = b""
        self.ended = False

    @property
    def seqs(self) -> list[int]:
        return [int(e.id) for e in self.events]

    def messages(self) -> list[dict[str, Any]]:
        return [orjson.loads(e.data) for e in self.events]

    async def read_until(self, done: Callable[[RawTail], bool], timeout: float = 10.0) -> None:
        """Read until ``done(self)`` or the end of the body, within ``timeout``."""

        async def read() -> None:
            while not done(self):
                chunk = await self.response.content.readany()
                if not chunk:
                    self.ended = True
                    return
                self.raw += chunk
                self.events.extend(self.parser.feed(chunk))

        await asyncio.wait_for(read(), timeout)

    async def events_until(self, count: int, timeout: float = 10.0) -> list[int]:
        await self.read_until(lambda t: len(t.events) >= count, timeout)
        return self.seqs

    async def until_end(self, timeout: float = 10.0) -> None:
        await self.read_until(lambda t: t.ended, timeout)


class _Link:
    """One proxied connection."""

    def __init__(self, writers: tuple[asyncio.StreamWriter, asyncio.StreamWriter]) -> None:
        self.writers = writers
        self.request = b""
        self.forwarded = 0
        self.stalled = False


class Proxy:
    """A loopback TCP proxy that can cut or stall the connections going through it.

    Records the bytes each client sent, so tests can look at reconnect requests.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.links: list[_Link] = []
        self._open: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[bytes]:
        """What each connection's client sent, in connection order."""
        return [link.request for link in self.links]

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def cut(self, *, graceful: bool = False) -> None:
        """Drop every open connection (both sides): reset, or closed after what was sent."""
        for link in list(self._open):
            for writer in link.writers:
                if graceful:
                    writer.close()
                else:
                    writer.transport.abort()

    def stall(self) -> None:
        """Stop forwarding server bytes on the connections open now (new ones flow)."""
        for link in self._open:
            link.stalled = True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        link = _Link((writer, up_writer))
        self.links.append(link)
        self._open.add(link)

        async def upstream() -> None:
            while data := await reader.read(65536):
                link.request += data
                up_writer.write(data)
                await up_writer.drain()

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                if link.stalled:
                    continue  # swallowed: the client sees a silent connection
                writer.write(data)
                link.forwarded += len(data)
                await writer.drain()

        tasks = [
            asyncio.create_task(upstream(), name="proxy-upstream"),
            asyncio.create_task(downstream(), name="proxy-downstream"),
        ]
        self._tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)
            self._open.discard(link)
            for w in link.writers:
                w.close()


@contextlib.asynccontextmanager
async def http_session() -> Any:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        yield http
