"""Fixtures for the subscription tests: a client on the in-process server, and helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

import streamkit
from streamkit import Event
from streamkit.testing import ServerHandle


@pytest.fixture
async def client(streamkit_server: ServerHandle) -> AsyncIterator[streamkit.AsyncClient]:
    async with streamkit.connect(streamkit_server.url, timeout=5.0) as c:
        yield c


async def publish(
    client: streamkit.AsyncClient,
    stream: str,
    count: int,
    *,
    key: str | None = None,
    start: int = 0,
) -> list[int]:
    """Store ``count`` events ``{"n": i}`` in requests of up to 1000; return their seqs."""
    seqs: list[int] = []
    for first in range(start, start + count, 1000):
        last = min(first + 1000, start + count)
        events = [Event({"n": i}, key=key or f"{stream}.k{i % 7}") for i in range(first, last)]
        seqs += [ack.seq for ack in await client.send(stream, events)]
    return seqs


async def eventually(
    check: Callable[[], object], *, timeout: float = 5.0, interval: float = 0.01
) -> None:
    """Poll ``check`` until it is truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {check}")
        await asyncio.sleep(interval)
