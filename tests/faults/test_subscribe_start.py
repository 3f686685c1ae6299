"""A subscription started while the server is down waits for it, as it does mid-stream;
``connect_timeout`` bounds the wait, and failures that cannot heal still raise at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import streamkit
from streamkit import Event
from tests.server_process import ServerProcess

pytestmark = pytest.mark.timeout(60)


async def _prepare(server: ServerProcess) -> None:
    async with streamkit.connect(server.url) as client:
        await client.create_stream("orders")
        await client.create_consumer("orders", "billing")


async def test_a_subscription_started_while_the_server_restarts_waits_for_it(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path / "streamkit.db")
    await server.astart()
    await _prepare(server)
    server.stop()
    async with streamkit.connect(server.url, timeout=2.0, retries=0) as client:
        subscription = client.subscribe("orders", consumer="billing", wait_for=0.5)

        async def first_event() -> Event:
            async for event in subscription:
                await event.ack()
                return event
            raise AssertionError("the subscription ended")

        receiving = asyncio.create_task(first_event())
        await asyncio.sleep(1.0)  # several attempts against a closed port
        assert not receiving.done()
        await server.astart()
        try:
            await client.send("orders", [Event("after the restart")])
            event = await asyncio.wait_for(receiving, 20)
            assert event.data == "after the restart"
        finally:
            server.stop()


async def test_connect_timeout_bounds_the_wait(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "streamkit.db")  # never started: nothing listens
    async with streamkit.connect(server.url, timeout=1.0, retries=0) as client:
        subscription = client.subscribe("orders", consumer="billing", connect_timeout=0.5)
        with pytest.raises(streamkit.ConnectError):
            async for _ in subscription:
                pass


async def test_a_missing_consumer_raises_at_once(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "streamkit.db")
    await server.astart()
    try:
        async with streamkit.connect(server.url) as client:
            await client.create_stream("orders")
            subscription = client.subscribe("orders", consumer="nobody")
            with pytest.raises(streamkit.NotFound):
                await asyncio.wait_for(subscription.start(), 5)
    finally:
        server.stop()
