"""Follow a stream live over server-sent events with ``client.tail()``.

``tail`` opens ``GET /api/streams/{stream}/messages/sse`` and yields each new
event as it is stored; after a dropped connection it reconnects and resumes
after the last event it yielded (``Last-Event-ID``). Nothing is acked: it reads
the stream, it is not a consumer. (A browser can do the same with
``EventSource``: see ``sse_tail.html``.) ::

    STREAMKIT_URL=http://localhost:7376 python examples/sse_tail.py
"""

from __future__ import annotations

import asyncio
import os

import streamkit
from streamkit import AsyncClient, Event

STREAM = "ticks"


async def produce(client: AsyncClient, count: int) -> None:
    """Publish ``count`` ticks, a few milliseconds apart."""
    for i in range(count):
        await client.publish(STREAM, Event({"tick": i}, key=f"ticks.{'odd' if i % 2 else 'even'}"))
        await asyncio.sleep(0.02)
    await client.flush()


async def main(url: str, count: int = 10) -> list[int]:
    """Tail the even ticks of ``count`` published while tailing; return their tick numbers."""
    async with streamkit.connect(url) as client:
        await client.create_stream(STREAM, exist_ok=True)
        # Start right after the newest stored event, so nothing published below is missed.
        newest = await client.get(STREAM, max_count=1, direction=streamkit.BACKWARD)
        start = (newest[0].seq or 0) + 1 if newest else 1

        producer = asyncio.create_task(produce(client, count), name="producer")
        ticks: list[int] = []
        try:
            async for event in client.tail(STREAM, key_pattern="ticks.even", from_seq=start):
                print(f"live  seq={event.seq} key={event.key} data={event.json()}")
                ticks.append(event.json()["tick"])
                if len(ticks) == (count + 1) // 2:
                    break
            await producer
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        return ticks


if __name__ == "__main__":
    asyncio.run(main(os.environ.get("STREAMKIT_URL", "http://localhost:7376")))
