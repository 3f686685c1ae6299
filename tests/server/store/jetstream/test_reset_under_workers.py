"""A consumer reset on JetStream under a running subscription: in place
(``CONSUMER.RESET``, nats-server 2.14+), or deleted and created again (older servers,
emulated here by making the in-place reset report a server without that API). Either
way the workers never see a 404 and go on from the new position."""

from __future__ import annotations

import asyncio

import pytest

import streamkit
from streamkit import Event
from streamkit.server.runner import start_server
from streamkit.server.store.jetstream.store import JetStreamStore
from tests.nats_server import NatsServer


async def _no_reset_api(*_: object) -> bool:
    return False


@pytest.mark.parametrize("in_place", [True, False], ids=["reset-api", "recreate"])
async def test_a_subscription_goes_on_through_a_reset(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch, in_place: bool
) -> None:
    store = JetStreamStore(nats_server.url)
    if not in_place:
        monkeypatch.setattr(store, "_reset_in_place", _no_reset_api)
    running = await start_server(store)
    try:
        async with streamkit.connect(running.url, timeout=5.0) as client:
            await client.create_stream("orders")
            await client.create_consumer("orders", "billing")
            info = f"CONSUMER.INFO.{store.naming.js_stream('orders')}.billing"
            before = await store.conn.api(info)
            await client.send("orders", [Event(f"m{i}") for i in range(3)])
            seen: list[str] = []
            first_pass = asyncio.Event()

            async def work() -> None:
                async with client.subscribe("orders", consumer="billing", wait_for=1.0) as sub:
                    async for event in sub:
                        seen.append(str(event.data))
                        await event.ack()
                        if len(seen) == 3:
                            first_pass.set()  # now long-polling an empty consumer
                        if len(seen) == 6:
                            return

            worker = asyncio.create_task(work(), name="worker")
            await asyncio.wait_for(first_pass.wait(), 10)
            await asyncio.sleep(0.3)  # the subscription's pull is waiting on the consumer
            for _ in range(3):  # the pulls in flight see the consumer deleted
                await client.reset_consumer("orders", "billing", start="all")
            await asyncio.wait_for(worker, 15)  # no NotFound ended it
            assert seen[:3] == ["m0", "m1", "m2"]
            assert sorted(seen[3:]) == ["m0", "m1", "m2"]
            after = await store.conn.api(info)
            # In place, JetStream keeps the consumer it created; otherwise it is a new one.
            assert (after["created"] == before["created"]) is in_place
    finally:
        await running.close()
