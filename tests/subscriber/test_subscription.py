"""Subscriptions against the in-process server: settling, leases, cancellation, errors."""

from __future__ import annotations

import asyncio
import gc
from functools import partial

import pytest

import streamkit
from streamkit import Event
from streamkit.models import Delivery
from streamkit.protocol.wire import StartPosition
from streamkit.subscriber import Subscription
from streamkit.testing import ServerHandle, run_server

from .conftest import eventually, publish

pytestmark = pytest.mark.timeout(30)


async def stats(client: streamkit.AsyncClient, stream: str, consumer: str) -> tuple[int, int, int]:
    c = await client.get_consumer(stream, consumer)
    return c.pending, c.in_flight, c.dead


async def test_ack_nack_and_extend(client: streamkit.AsyncClient) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing")
    await publish(client, "orders", 3)
    seen: list[tuple[int, int]] = []
    nacked_at = 0.0
    loop = asyncio.get_running_loop()
    async with client.subscribe("orders", consumer="billing", wait_for=0.2) as sub:
        async for event in sub:
            assert event.seq is not None
            seen.append((event.seq, event.delivery_count))
            n = event.json()["n"]
            if n == 0:
                await event.ack()
                await event.ack()  # a no-op
                await event.nack()  # so is this
            elif n == 1 and event.delivery_count == 1:
                nacked_at = loop.time()
                await event.nack(delay=0.3)
            elif n == 1:
                assert loop.time() - nacked_at >= 0.25  # not before its delay
                await event.ack()
            else:
                await event.extend()
                await event.ack()
            if len(seen) == 4:
                break
    assert seen == [(1, 1), (2, 1), (3, 1), (2, 2)]
    assert await stats(client, "orders", "billing") == (0, 0, 0)


async def test_an_event_held_past_max_lease_is_redelivered_after_ack_wait(
    client: streamkit.AsyncClient,
) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing", ack_wait=0.3)
    await publish(client, "orders", 1)
    deliveries: list[Event] = []
    sub = Subscription(client.api, ["orders"], consumer="billing", wait_for=0.2, max_lease=0.05)
    async with sub:
        async for event in sub:
            deliveries.append(event)  # held, never acked: the lease is dropped
            if event.delivery_count == 2:
                await event.ack()
                break
    assert [e.seq for e in deliveries] == [1, 1]
    await deliveries[0].ack()  # after close, and after a redelivery: ignored by the server
    assert await stats(client, "orders", "billing") == (0, 0, 0)


async def test_an_event_nobody_settles_is_let_go_once_its_lease_is_dropped(
    client: streamkit.AsyncClient,
) -> None:
    await client.create_stream("orders")
    # Renewal cycles (when leases past max_lease are dropped) come within 0.9 x
    # ack_wait; the redelivery, which would lease the message again, after ack_wait.
    await client.create_consumer("orders", "billing", ack_wait=1.0)
    await publish(client, "orders", 1)
    sub = Subscription(client.api, ["orders"], consumer="billing", wait_for=0.2, max_lease=0.05)
    async with sub:
        async for event in sub:
            delivery = event.delivery  # the event is dropped, never settled
            await eventually(partial(held, sub, 0), timeout=0.95, interval=0.005)
            # Only the event refers to its delivery now: no record of the subscription's.
            assert not [r for r in gc.get_referrers(delivery) if isinstance(r, dict)]
            break


async def test_lease_renewal_keeps_a_slow_handlers_event_from_redelivery(
    client: streamkit.AsyncClient,
) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing", ack_wait=0.3)
    await publish(client, "orders", 1)
    rival_got: list[Event] = []

    async def rival() -> None:
        async for event in client.subscribe("orders", consumer="billing", wait_for=0.2):
            rival_got.append(event)

    async with client.subscribe("orders", consumer="billing", wait_for=0.2) as sub:
        async for event in sub:
            task = asyncio.create_task(rival())
            await asyncio.sleep(1.2)  # four ack deadlines
            await event.ack()
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rival_got == []
    assert event.delivery_count == 1
    assert await stats(client, "orders", "billing") == (0, 0, 0)


async def test_max_deliver_dead_letters(client: streamkit.AsyncClient) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing", max_deliver=2)
    await publish(client, "orders", 2)
    counts: list[tuple[int, int]] = []
    async with client.subscribe("orders", consumer="billing", wait_for=0.1) as sub:
        async for event in sub:
            assert event.seq is not None
            counts.append((event.seq, event.delivery_count))
            if event.seq == 1:
                await event.nack()
            else:
                await event.ack()
            if len(counts) == 3:
                break
        # The third delivery never comes: the poison message is dead.
        await eventually(lambda: sub.held == 0)
        await asyncio.sleep(0.3)
        assert sub.held == 0
    assert sorted(counts) == [(1, 1), (1, 2), (2, 1)]
    assert await stats(client, "orders", "billing") == (0, 0, 1)
    dead = await client.api.transport.request("GET", "/api/streams/orders/consumers/billing/dead")
    assert [m["seq"] for m in dead["data"]] == [1]


async def test_cancel_mid_batch_gives_the_rest_back_at_once(
    client: streamkit.AsyncClient,
) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing", ack_wait=60)
    await publish(client, "orders", 20)
    handled: list[int] = []
    five = asyncio.Event()

    async def slow_worker() -> None:
        async with client.subscribe("orders", consumer="billing", batch_size=20) as sub:
            async for event in sub:
                assert event.seq is not None
                handled.append(event.seq)
                await event.ack()
                if len(handled) == 5:
                    five.set()
                    await asyncio.sleep(3600)

    task = asyncio.create_task(slow_worker())
    await asyncio.wait_for(five.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rest: list[tuple[int, int]] = []
    async with client.subscribe("orders", consumer="billing", wait_for=0.2) as other:
        async for event in other:
            assert event.seq is not None
            rest.append((event.seq, event.delivery_count))
            await event.ack()
            if len(rest) == 15:
                break
    # Well before the 60 s ack deadline: the cancelled worker nacked them.
    assert sorted(seq for seq, _ in rest) == list(range(6, 21))
    assert await stats(client, "orders", "billing") == (0, 0, 0)


async def test_break_without_async_with_cleans_up(client: streamkit.AsyncClient) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing", ack_wait=60)
    await publish(client, "orders", 10)
    sub = client.subscribe("orders", consumer="billing", batch_size=10)
    async for event in sub:
        await event.ack()
        break
    await eventually(lambda: sub.closed)
    back = await client.receive("orders", "billing", batch_size=100)
    assert sorted(e.seq or 0 for e in back) == list(range(2, 11))
    assert all(e.delivery_count >= 2 for e in back)


async def test_client_close_gives_back_what_its_subscriptions_hold(
    streamkit_server: ServerHandle,
) -> None:
    async with streamkit.connect(streamkit_server.url) as admin:
        await admin.create_stream("orders")
        await admin.create_consumer("orders", "billing", ack_wait=60)
        await publish(admin, "orders", 5)
        client = streamkit.connect(streamkit_server.url)
        sub = client.subscribe("orders", consumer="billing")
        async for _ in sub:
            await client.close()
        assert sub.closed
        assert await stats(admin, "orders", "billing") == (5, 0, 0)


async def test_competing_subscriptions_share_the_work_exactly_once(
    client: streamkit.AsyncClient,
) -> None:
    total = 10_000
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing")
    handled: list[list[int]] = [[], [], []]
    subs = [client.subscribe("orders", consumer="billing", batch_size=100) for _ in handled]

    async def worker(sub: Subscription, mine: list[int]) -> None:
        async for event in sub:
            assert event.seq is not None
            mine.append(event.seq)
            await event.ack()

    for sub in subs:
        await sub.start()  # all three polling before anything is published
    workers = [asyncio.create_task(worker(s, m)) for s, m in zip(subs, handled, strict=True)]
    seqs = await publish(client, "orders", total)
    await eventually(lambda: sum(map(len, handled)) >= total, timeout=30)
    for sub in subs:
        await sub.aclose()
    await asyncio.wait_for(asyncio.gather(*workers), 10)
    every = [seq for mine in handled for seq in mine]
    assert sorted(every) == sorted(seqs)  # each acked exactly once
    assert all(handled), [len(mine) for mine in handled]
    assert await stats(client, "orders", "billing") == (0, 0, 0)


async def test_several_streams_interleave(client: streamkit.AsyncClient) -> None:
    for stream in ("a", "b"):
        await client.create_stream(stream)
        await client.create_consumer(stream, "billing")
    await publish(client, "a", 300)
    await publish(client, "b", 300)
    order: list[str] = []
    async with client.subscribe("a", "b", consumer="billing", batch_size=50) as sub:
        async for event in sub:
            assert event.stream is not None
            order.append(event.stream)
            await event.ack()
            if len(order) == 600:
                break
    assert order.count("a") == order.count("b") == 300
    # Batch by batch, the streams take turns: neither waits for the other to drain.
    assert {"a", "b"} <= set(order[:150]) and {"a", "b"} <= set(order[-150:])


async def test_ephemeral_consumers_start_new_and_are_deleted_on_close(
    client: streamkit.AsyncClient,
) -> None:
    await client.create_stream("orders")
    await publish(client, "orders", 3)  # before the subscription: not seen
    got: list[int] = []
    async with client.subscribe("orders", filter="orders.eu.>", wait_for=0.2) as sub:
        assert [c.name for c in await client.list_consumers("orders")] == [sub.consumers["orders"]]
        await publish(client, "orders", 2, key="orders.us.1", start=100)
        await publish(client, "orders", 2, key="orders.eu.1", start=200)
        async for event in sub:
            got.append(event.json()["n"])
            await event.ack()
            if len(got) == 2:
                break
    assert got == [200, 201]
    assert await client.list_consumers("orders") == []


@pytest.mark.parametrize(("start", "first"), [("all", 0), (3, 2)])
async def test_ephemeral_start_positions(
    client: streamkit.AsyncClient, start: StartPosition, first: int
) -> None:
    await client.create_stream("orders")
    await publish(client, "orders", 5)
    async with client.subscribe("orders", start=start, wait_for=0.1) as sub:
        async for event in sub:
            assert event.json()["n"] == first
            break


async def test_an_ephemeral_consumer_outlives_a_slow_handler(
    client: streamkit.AsyncClient,
) -> None:
    await client.create_stream("orders")
    sub = Subscription(
        client.api, ["orders"], wait_for=0.1, batch_size=1, prefetch=1, inactive_threshold=0.3
    )
    async with sub:
        await publish(client, "orders", 3)
        got = []
        async for event in sub:
            got.append(event.json()["n"])
            await asyncio.sleep(0.8)  # the buffer is full: nothing polls for a while
            await event.ack()
            if len(got) == 3:
                break
    assert got == [0, 1, 2]


async def test_a_deleted_consumer_raises_out_of_the_loop(client: streamkit.AsyncClient) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing")
    await publish(client, "orders", 1)
    sub = client.subscribe("orders", consumer="billing", wait_for=0.1)
    with pytest.raises(streamkit.NotFound, match="consumer"):
        async for event in sub:
            await event.ack()
            await client.delete_consumer("orders", "billing")
    assert sub.closed


async def test_a_deleted_stream_raises_out_of_the_loop(client: streamkit.AsyncClient) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing")
    sub = client.subscribe("orders", consumer="billing", wait_for=0.1)
    await sub.start()
    await client.delete_stream("orders")
    with pytest.raises(streamkit.NotFound):
        async for _ in sub:
            pass


async def test_a_missing_consumer_raises_at_once(client: streamkit.AsyncClient) -> None:
    await client.create_stream("orders")
    with pytest.raises(streamkit.NotFound):
        async with client.subscribe("orders", consumer="nobody"):
            pass
    with pytest.raises(streamkit.NotFound):
        async with client.subscribe("missing"):
            pass


async def test_a_bad_filter_raises(client: streamkit.AsyncClient) -> None:
    await client.create_stream("orders")
    with pytest.raises(streamkit.ValidationError):
        async for _ in client.subscribe("orders", filter="orders.>.x"):
            pass


async def test_a_refused_api_key_raises() -> None:
    async with run_server(api_key="sesame") as server:
        async with streamkit.connect(server.url, api_key="sesame") as admin:
            await admin.create_stream("orders")
            await admin.create_consumer("orders", "billing")
        async with streamkit.connect(server.url, api_key="wrong") as client:
            with pytest.raises(streamkit.Unauthorized):
                async for _ in client.subscribe("orders", consumer="billing"):
                    pass


async def test_closing_does_not_spend_a_delivery_attempt(client: streamkit.AsyncClient) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing", max_deliver=2)
    await publish(client, "orders", 5)
    async with client.subscribe("orders", consumer="billing", batch_size=10) as sub:
        async for _ in sub:
            break  # all five are held, one handed out: close gives them back
    back = await client.receive("orders", "billing", batch_size=10)
    assert sorted((e.seq or 0, e.delivery_count) for e in back) == [(i, 2) for i in range(1, 6)]


def held(sub: Subscription, count: int) -> bool:
    return sub.held == count


async def test_prefetched_deliveries_are_not_events_until_handed_out(
    client: streamkit.AsyncClient,
) -> None:
    # Thousands of prefetched events alive at once would be garbage collector work on
    # every consume; the subscription leases ack ids and builds each event as it goes.
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing")
    await publish(client, "orders", 600)
    handed_out = 0
    async with client.subscribe("orders", consumer="billing", batch_size=300) as sub:
        async for event in sub:
            await event.ack()
            handed_out += 1
            if handed_out in (1, 599):
                await eventually(partial(held, sub, 600 - handed_out))  # the rest prefetched
                gc.collect()
                assert sum(isinstance(o, (Event, Delivery)) for o in gc.get_objects()) <= 2
            if handed_out == 600:
                break
    assert await stats(client, "orders", "billing") == (0, 0, 0)
