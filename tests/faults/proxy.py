"""A loopback TCP proxy that drops, stalls, resets and refuses connections on command.

    proxy = FaultyProxy(target_port)
    await proxy.start()          # listens on 127.0.0.1:proxy.port
    proxy.reset_all()            # RST every live connection
    proxy.drop_all()             # FIN every live connection
    proxy.stall()                # stop moving bytes (connections stay open)...
    proxy.resume()               # ...until resumed
    proxy.refuse(True)           # new connections are reset at once
    await proxy.close()

Every connection has two pump tasks (client→server, server→client) that move
chunks while the gate is open; everything is owned and cancelled on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

CHUNK = 64 * 1024


@dataclass
class ProxyStats:
    """What the proxy did, for the test's figures."""

    accepted: int = 0
    refused: int = 0
    resets: int = 0
    drops: int = 0
    stalls: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass(eq=False)  # identity, so links can live in a set
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN (SO_LINGER 0), dropping unsent data."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultyProxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target_port``, with faults on demand."""

    def __init__(self, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.port = 0
        self.stats = ProxyStats()
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._gate = asyncio.Event()
        self._gate.set()
        self._refusing = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def live(self) -> int:
        """Connections open through the proxy now."""
        return len(self._links)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._gate.set()
        for link in list(self._links):
            self._cut(link, rst=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    # Faults.

    def reset_all(self) -> int:
        """RST both ends of every live connection; returns how many."""
        links = list(self._links)
        for link in links:
            self._cut(link, rst=True)
        self.stats.resets += len(links)
        return len(links)

    def drop_all(self) -> int:
        """Close both ends of every live connection with a FIN; returns how many."""
        links = list(self._links)
        for link in links:
            self._cut(link, rst=False)
        self.stats.drops += len(links)
        return len(links)

    def stall(self) -> None:
        """Stop forwarding bytes in both directions; connections stay open and buffer."""
        if self._gate.is_set():
            self.stats.stalls += 1
        self._gate.clear()

    def resume(self) -> None:
        """Forward bytes again (what was held back goes through)."""
        self._gate.set()

    def refuse(self, on: bool) -> None:
        """While on, new connections are reset as soon as they are accepted."""
        self._refusing = on

    # Plumbing.

    def _cut(self, link: _Link, *, rst: bool) -> None:
        self._links.discard(link)
        for writer in (link.client, link.server):
            if rst:
                _rst(writer)
            else:
                writer.close()
        for task in link.tasks:
            task.cancel()

    def _own(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            self.stats.refused += 1
            _rst(writer)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.target_port), 5
            )
        except (OSError, asyncio.TimeoutError):
            self.stats.refused += 1
            _rst(writer)
            return
        self.stats.accepted += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        link.tasks = [
            self._own(self._pump(reader, up_writer, link, up=True), "proxy-up"),
            self._own(self._pump(up_reader, writer, link, up=False), "proxy-down"),
        ]

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link, *, up: bool
    ) -> None:
        try:
            while True:
                chunk = await reader.read(CHUNK)
                if not chunk:
                    break
                await self._gate.wait()
                if link not in self._links:
                    return
                writer.write(chunk)
                await writer.drain()
                if up:
                    self.stats.bytes_up += len(chunk)
                else:
                    self.stats.bytes_down += len(chunk)
        except (OSError, asyncio.IncompleteReadError):
            pass
        # One side ended: end the other side too (HTTP keep-alive never half-closes).
        if link in self._links:
            self._cut(link, rst=False)
