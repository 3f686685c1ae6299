"""Quickstart: create a stream and a consumer, publish, subscribe and ack, read back.

Run it against a server (``make serve`` or ``streamkit serve``)::

    STREAMKIT_URL=http://localhost:7376 python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import os

import streamkit
from streamkit import Event


async def main(url: str) -> list[int]:
    """Publish three orders, handle them as consumer ``billing``; return the seqs handled."""
    async with streamkit.connect(url) as client:
        print("server:", await client.ping())
        await client.create_stream("orders", exist_ok=True)
        await client.create_consumer("orders", "billing", filter="orders.>", exist_ok=True)

        # publish() queues and returns; a background flush sends the events in batches.
        events = [
            Event({"order": i, "total": 9.5 * i}, key=f"orders.{region}.{i}")
            for i, region in enumerate(["eu", "us", "eu"], start=1)
        ]
        await client.publish("orders", events)
        acks = [await event.wait_for_ack() for event in events]
        print("stored at seqs", [ack.seq for ack in acks])

        # subscribe() long-polls the durable consumer; ack each event once handled.
        handled: list[int] = []
        async with client.subscribe("orders", consumer="billing") as subscription:
            async for event in subscription:
                print(f"billing {event.key}: {event.json()}")
                await event.ack()
                handled.append(event.seq or 0)
                if len(handled) == len(events):
                    break

        # Catch-up reads need no consumer: the newest event, read backward.
        [newest] = await client.get("orders", max_count=1, direction=streamkit.BACKWARD)
        print("newest:", newest.seq, newest.key, newest.json())
        return handled


if __name__ == "__main__":
    asyncio.run(main(os.environ.get("STREAMKIT_URL", "http://localhost:7376")))
