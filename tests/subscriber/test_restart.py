"""A subscription survives its server being SIGKILLed and restarted on the same port and db."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import streamkit

from .conftest import eventually, publish
from .server_process import ServerProcess


async def test_the_subscription_resumes_after_a_server_kill(tmp_path: Path) -> None:
    total = 3000
    server = ServerProcess(tmp_path / "streamkit.db")
    await server.start()
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
            await server.kill()
            await asyncio.sleep(0.3)
            await server.start()

            # Everything gets acked; what was in flight at the kill comes back after ack_wait.
            await eventually(lambda: acked >= set(seqs), timeout=20, interval=0.05)
            task.cancel()  # closing sends the last acks
            await asyncio.gather(task, return_exceptions=True)

            assert redelivered_after_ack == []  # nothing acked is delivered again
            assert set(delivered) == set(seqs)  # nothing unacked is lost
            final = await client.get_consumer("orders", "billing")
            assert (final.pending, final.in_flight, final.dead) == (0, 0, 0)
    finally:
        await server.stop()
