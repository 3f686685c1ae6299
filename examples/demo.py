"""`make demo`: start an embedded server, publish a few events, subscribe and ack them.

Runs with nothing else installed: the server is started in this process on a
free loopback port with a temporary SQLite database.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import streamkit
from streamkit import Ack, Event, Nack
from streamkit.server.runner import start_server
from streamkit.server.store.sqlite.store import SqliteStore


async def run(url: str) -> None:
    """The example itself: what a user of streamkit writes."""
    async with streamkit.connect(url) as client:
        print("ping:", await client.ping())
        await client.create_stream("orders", exist_ok=True)
        await client.create_consumer("orders", "billing", filter="orders.>", exist_ok=True)

        def on_ack(ack: Ack) -> None:
            print(f"  acked   seq={ack.seq} id={ack.id}")

        def on_nack(nack: Nack) -> None:
            print(f"  nacked  id={nack.id}: {nack.code} {nack.error}")

        print("publishing 5 events")
        events = [
            Event({"order": i, "total": 10.0 * i}, key=f"orders.{region}.{i}")
            for i, region in enumerate(["eu", "us", "eu", "apac", "us"], start=1)
        ]
        await client.publish("orders", events, on_ack=on_ack, on_nack=on_nack)
        await client.flush()

        print("subscribing as consumer 'billing'")
        received = 0
        async with client.subscribe("orders", consumer="billing") as subscription:
            async for event in subscription:
                print(f"  received seq={event.seq} key={event.key} data={event.json()}")
                await event.ack()
                received += 1
                if received == len(events):
                    break

        last_two = await client.get("orders", max_count=2, direction=streamkit.BACKWARD)
        print("newest two, read backward:", [e.seq for e in last_two])


async def main() -> None:
    """Start the embedded server, run the example against it, stop the server."""
    with tempfile.TemporaryDirectory(prefix="streamkit-demo-") as tmp:
        server = await start_server(SqliteStore(Path(tmp) / "demo.db"))
        print(f"embedded streamkit server on {server.url}")
        try:
            await run(server.url)
        finally:
            await server.close()


if __name__ == "__main__":
    asyncio.run(main())
