"""`Subscription.batches()` against the in-process server: ack, nack, give back, compete."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

import streamkit
from streamkit.protocol.wire import MAX_ACK_IDS
from streamkit.subscriber import Batch

from .conftest import publish

pytestmark = pytest.mark.timeout(30)


async def stats(client: streamkit.AsyncClient, stream: str, consumer: str) -> tuple[int, int, int]:
    c = await client.get_consumer(stream, consumer)
    return c.pending, c.in_flight, c.dead


def seqs(batch: Batch) -> list[int]:
    return [event.seq or 0 for event in batch]


async def test_each_batch_is_one_receive_and_ack_settles_it_in_one_request(
    client: streamkit.AsyncClient,
) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing")
    await publish(client, "orders", 250)
    ack_requests: list[int] = []
    real_ack = client.api.ack

    async def counting_ack(stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        ack_requests.append(len(ack_ids))
        await real_ack(stream, consumer, ack_ids)

    client.api.ack = counting_ack  # type: ignore[method-assign]
    seen: list[int] = []
    batches = 0
    async with client.subscribe("orders", consumer="billing", batch_size=100, wait_for=0.2) as sub:
        async for batch in sub.batches():
            assert batch.stream == "orders"
            assert 1 <= len(batch) <= 100
            assert not batch.settled
            seen += seqs(batch)
            batches += 1
            await batch.ack()
            assert batch.settled
            assert all(event.delivery is not None and event.delivery.settled for event in batch)
            if len(seen) == 250:
                break
    assert seen == list(range(1, 251))
    assert sum(ack_requests) == 250
    assert len(ack_requests) <= batches
    assert max(ack_requests) <= MAX_ACK_IDS
    assert await stats(client, "orders", "billing") == (0, 0, 0)


async def test_a_nacked_batch_is_delivered_again(client: streamkit.AsyncClient) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing")
    await publish(client, "orders", 5)
    deliveries: list[tuple[list[int], list[int]]] = []
    async with client.subscribe("orders", consumer="billing", wait_for=0.2) as sub:
        async for batch in sub.batches():
            deliveries.append((seqs(batch), [event.delivery_count for event in batch]))
            if len(deliveries) == 1:
                await batch.nack(reason="not yet")
            else:
                await batch.ack()
            if sum(len(s) for s, _ in deliveries) == 10:
                break
    assert deliveries[0] == ([1, 2, 3, 4, 5], [1] * 5)
    assert [seq for s, _ in deliveries[1:] for seq in s] == [1, 2, 3, 4, 5]
    assert {count for _, c in deliveries[1:] for count in c} == {2}
    assert await stats(client, "orders", "billing") == (0, 0, 0)


async def test_events_settled_one_by_one_are_left_out_of_the_batch_ack(
    client: streamkit.AsyncClient,
) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing")
    await publish(client, "orders", 3)
    redelivered: list[tuple[int, int]] = []
    async with client.subscribe("orders", consumer="billing", wait_for=0.2) as sub:
        async for batch in sub.batches():
            if not redelivered and batch[0].delivery_count == 1:
                await batch[0].nack()  # back at once; the batch ack takes the other two
                await batch.ack()
                await batch.ack()  # a no-op
                redelivered.append((-1, -1))
                continue
            redelivered += [(event.seq or 0, event.delivery_count) for event in batch]
            await batch.ack()
            break
    assert redelivered[1:] == [(1, 2)]
    assert await stats(client, "orders", "billing") == (0, 0, 0)


async def test_closing_gives_back_the_batches_not_acked(client: streamkit.AsyncClient) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing", ack_wait=60)
    await publish(client, "orders", 30)
    first: list[int] = []
    async with client.subscribe(
        "orders", consumer="billing", batch_size=10, prefetch=2, wait_for=0.2
    ) as sub:
        async for batch in sub.batches():
            first = seqs(batch)  # handed out, never acked; more are prefetched behind it
            break
    assert first == list(range(1, 11))
    # Given back, not left to the 60 s ack deadline: another subscriber gets them now.
    again: list[int] = []
    async with client.subscribe("orders", consumer="billing", wait_for=0.2) as sub:
        async for batch in sub.batches():
            again += seqs(batch)
            await batch.ack()
            if len(again) == 30:
                break
    assert sorted(again) == list(range(1, 31))
    assert await stats(client, "orders", "billing") == (0, 0, 0)


async def test_competing_batch_subscriptions_share_the_events_once(
    client: streamkit.AsyncClient,
) -> None:
    total = 3000
    await client.create_stream("jobs")
    await client.create_consumer("jobs", "workers", ack_wait=60, max_ack_pending=10_000)
    await publish(client, "jobs", total)
    got: dict[str, list[int]] = {"a": [], "b": []}
    done = asyncio.Event()
    subs = {
        name: client.subscribe("jobs", consumer="workers", batch_size=50, wait_for=0.2)
        for name in got
    }

    async def worker(name: str) -> None:
        async with subs[name] as sub:
            async for batch in sub.batches():
                got[name] += seqs(batch)
                await batch.ack()
                await asyncio.sleep(0)  # a handler that yields, as real ones do
                if sum(map(len, got.values())) >= total:
                    done.set()
                if done.is_set():
                    break

    tasks = [asyncio.create_task(worker(name), name=f"worker-{name}") for name in got]
    await asyncio.wait_for(done.wait(), 20)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for sub in subs.values():
        await sub.aclose()  # a cancelled close goes on in the background: wait for its acks
    everything = got["a"] + got["b"]
    assert sorted(everything) == list(range(1, total + 1))  # each once, none lost
    assert got["a"] and got["b"]
    assert await stats(client, "jobs", "workers") == (0, 0, 0)
