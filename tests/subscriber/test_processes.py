"""Across processes: the server SIGKILLed and restarted under a subscription; a client that
vanishes without closing its subscription."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import streamkit
from streamkit.testing import ServerHandle
from tests.server_process import ServerProcess

from .conftest import eventually, publish

pytestmark = pytest.mark.timeout(60)

VANISHING_CLIENT = """
import asyncio, sys
import streamkit
from streamkit.subscriber import Subscription

async def main() -> None:
    client = streamkit.connect(sys.argv[1])
    sub = Subscription(client.api, ["orders"], inactive_threshold=0.5, wait_for=0.2)
    await sub.start()
    print(sub.consumers["orders"], flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_the_subscription_resumes_after_a_server_kill(tmp_path: Path) -> None:
    total = 3000
    server = ServerProcess(tmp_path / "streamkit.db")
    await server.astart()
    try:
        async with streamkit.connect(server.url, timeout=5.0, retries=1) as client:
            await client.create_stream("orders")
            # The outage must be shorter than ack_wait for acks sent late to count.
            await client.create_consumer("orders", "billing", ack_wait=4.0)
            seqs = await publish(client, "orders", total)

            delivered: Counter[int] = Counter()
            acked: set[int] = set()
            redelivered_after_ack: list[int] = []
            killed = asyncio.Event()

            async def consume() -> None:
                async with client.subscribe(
                    "orders", consumer="billing", batch_size=50, wait_for=0.5
                ) as sub:
                    async for event in sub:
                        assert event.seq is not None
                        if event.seq in acked:
                            redelivered_after_ack.append(event.seq)
                        delivered[event.seq] += 1
                        if len(acked) == total // 3 and not killed.is_set():
                            killed.set()
                            await asyncio.sleep(0.05)  # let the kill land mid-stream
                        await event.ack()
                        acked.add(event.seq)
                        await asyncio.sleep(0)

            task = asyncio.create_task(consume())
            await asyncio.wait_for(killed.wait(), 20)
            server.kill()
            await asyncio.sleep(0.3)
            await server.astart()

            # Everything gets acked; what was in flight at the kill comes back after ack_wait.
            await eventually(lambda: acked >= set(seqs), timeout=20, interval=0.05)
            task.cancel()  # closing sends the last acks
            await asyncio.gather(task, return_exceptions=True)

            assert redelivered_after_ack == []  # nothing acked is delivered again
            assert set(delivered) == set(seqs)  # nothing unacked is lost
            final = await client.get_consumer("orders", "billing")
            assert (final.pending, final.in_flight, final.dead) == (0, 0, 0)
    finally:
        server.stop()


async def test_the_server_deletes_the_ephemeral_consumer_of_a_vanished_client(
    streamkit_server: ServerHandle, client: streamkit.AsyncClient
) -> None:
    await client.create_stream("orders")
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", VANISHING_CLIENT, streamkit_server.url, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        name = (await asyncio.wait_for(child.stdout.readline(), 20)).decode().strip()
        assert [c.name for c in await client.list_consumers("orders")] == [name]
    finally:
        child.kill()  # no close, no delete
        await child.wait()

    async def consumers() -> list[str]:
        return [c.name for c in await client.list_consumers("orders")]

    for _ in range(100):
        if not await consumers():
            break
        await asyncio.sleep(0.05)
    assert await consumers() == []
