"""A message whose data does not decode as its content type says is the user's to see,
never a stall or a dead letter for the messages beside it."""

from __future__ import annotations

import asyncio

import pytest

import streamkit
from streamkit.testing import ServerHandle
from tests.http_api import Api

pytestmark = pytest.mark.timeout(30)

BAD_AT = 9


async def _publish_with_one_poison(api: Api) -> None:
    await api.stream("orders")
    await api.consumer("orders", "billing", ack_wait_ms=1000, max_deliver=2)
    messages = [
        {
            "key": "orders.eu",
            "data": f'{{"n": {n}}}',
            "headers": {"content-type": "application/json"},
        }
        for n in range(20)
    ]
    messages[BAD_AT]["data"] = "this is not JSON"
    assert (await api.publish("orders", messages))["published"] == 20


async def test_a_subscription_hands_out_the_poison_flagged_and_the_rest_decoded(
    api: Api, streamkit_server: ServerHandle
) -> None:
    await _publish_with_one_poison(api)
    received: list[streamkit.Event] = []
    async with streamkit.connect(streamkit_server.url) as client:
        subscription = client.subscribe("orders", consumer="billing", wait_for=0.2)

        async def consume() -> None:
            async for event in subscription:
                received.append(event)
                await event.ack()
                if len(received) == 20:
                    return

        await asyncio.wait_for(consume(), 10)
        await subscription.aclose()  # sends the acks still queued
        consumer = await client.get_consumer("orders", "billing")
    assert [e.seq for e in received] == list(range(1, 21))
    poison = received[BAD_AT]
    assert poison.data == "this is not JSON"
    assert poison.decode_error is not None and "message 10 of orders" in str(poison.decode_error)
    with pytest.raises(streamkit.DecodeError):
        poison.json()
    good = [e for e in received if e is not poison]
    assert all(e.decode_error is None for e in good)
    assert [e.json()["n"] for e in good] == [n for n in range(20) if n != BAD_AT]
    assert (consumer.pending, consumer.in_flight, consumer.dead) == (0, 0, 0)


async def test_catch_up_reads_and_the_tail_hand_it_over_too(
    api: Api, streamkit_server: ServerHandle
) -> None:
    await _publish_with_one_poison(api)
    async with streamkit.connect(streamkit_server.url) as client:
        stored = await client.get("orders", max_count=100)
        tailed = []
        async for event in client.tail("orders", from_seq=1):
            tailed.append(event)
            if len(tailed) == 20:
                break
    for events in (stored, tailed):
        assert len(events) == 20
        assert [e.seq for e in events if e.decode_error is not None] == [BAD_AT + 1]
