"""Publishing the pyensign way: ``Event(data, mimetype)``, ack/nack callbacks, ``wait_for_ack``.

Every published event ends in exactly one of ``on_ack`` / ``on_nack`` (plain
functions or coroutines); ``await event.wait_for_ack()`` waits for one event and
raises its `Nack` if the server refused it. ::

    STREAMKIT_URL=http://localhost:7376 python examples/publish_callbacks.py
"""

from __future__ import annotations

import asyncio
import os

import streamkit
from streamkit import Ack, Event, Nack


async def main(url: str, readings: int = 5) -> tuple[list[Ack], list[Nack]]:
    """Publish ``readings`` sensor readings and one event to a missing stream."""
    acked: list[Ack] = []
    nacked: list[Nack] = []

    def on_ack(ack: Ack) -> None:  # called on the event loop: keep it quick
        acked.append(ack)
        print(f"acked   seq={ack.seq} committed={ack.committed:%H:%M:%S.%f}")

    async def on_nack(nack: Nack) -> None:  # callbacks may be coroutines too
        nacked.append(nack)
        print(f"nacked  {nack.id}: {nack.code} ({nack.error})")

    async with streamkit.connect(url) as client:
        await client.create_stream("sensors", exist_ok=True)

        # pyensign's Event(data, mimetype): raw bytes that are JSON.
        events = [
            Event(b'{"temp": %d}' % (68 + i), "application/json", key="sensors.kitchen")
            for i in range(readings)
        ]
        await client.publish("sensors", *events, on_ack=on_ack, on_nack=on_nack)

        first = await events[0].wait_for_ack()  # one event; the others settle in the background
        print(f"first reading stored at seq {first.seq}")

        # A stream that does not exist: the event is nacked (code "not_found"), not lost silently.
        lost = Event({"temp": 0}, key="sensors.attic")
        await client.publish("no-such-stream", lost, on_ack=on_ack, on_nack=on_nack)
        try:
            await lost.wait_for_ack(timeout=10)
        except Nack as nack:
            print(f"as expected, not stored: {nack.code}")

        await client.flush()  # every event queued so far is now acked or nacked
    return acked, nacked


if __name__ == "__main__":
    asyncio.run(main(os.environ.get("STREAMKIT_URL", "http://localhost:7376")))
