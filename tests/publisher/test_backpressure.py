"""The buffer bounds memory: publish waits when it is full, or raises QueueFull."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from streamkit import Event, QueueFull, StreamkitError

from .conftest import ClientFactory
from .fakes import FakeSendRoute, encoded_size, make_events


async def test_publish_waits_for_space_and_the_buffer_stays_bounded(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(max_buffer=50, max_batch=10, max_in_flight=2)
    publisher = client.publisher("s")
    route.delay = 0.002
    peaks: list[int] = []
    route.on_request = lambda _: peaks.append(publisher.buffered)

    def generate() -> Iterator[Event]:
        for i in range(600):
            peaks.append(publisher.buffered)
            yield Event(str(i), key=f"k.{i % 3}")

    await client.publish("s", generate())
    await client.flush(timeout=10)
    assert len(route.stored) == 600
    assert max(peaks) <= 50
    assert publisher.buffered == 0 and publisher.buffered_bytes == 0


async def test_the_byte_bound_holds_too(make_client: ClientFactory, route: FakeSendRoute) -> None:
    events = make_events(40, size=1000)
    bound = 5 * encoded_size(events[0])
    client = make_client(max_buffer_bytes=bound, max_batch=2)
    publisher = client.publisher("s")
    peaks: list[int] = []
    route.on_request = lambda _: peaks.append(publisher.buffered_bytes)
    for event in events:
        await client.publish("s", event)
        peaks.append(publisher.buffered_bytes)
    await client.flush(timeout=10)
    assert len(route.stored) == 40
    assert max(peaks) <= bound


async def test_an_event_bigger_than_the_buffer_still_goes_alone(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(max_buffer_bytes=100)
    events = make_events(3, size=500)
    await client.publish("s", events)
    await client.flush(timeout=10)
    assert route.request_sizes() == [1, 1, 1]


async def test_block_false_raises_queue_full_and_queues_nothing(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(max_buffer=5)
    route.hold()
    await client.publish("s", make_events(4), block=False)
    late = make_events(2)
    with pytest.raises(QueueFull):
        await client.publish("s", late, block=False)
    for event in late:
        with pytest.raises(StreamkitError, match="has not been published"):
            await event.wait_for_ack()
    await client.publish("s", late[0], block=False)  # exactly one slot left
    route.release()
    await client.flush(timeout=10)
    assert len(route.stored) == 5


async def test_block_false_takes_async_iterables_all_or_nothing(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(max_buffer=3)
    route.hold()

    async def generate(count: int) -> AsyncIterator[Event]:
        for event in make_events(count):
            yield event

    with pytest.raises(QueueFull):
        await client.publish("s", generate(4), block=False)
    assert client.publisher("s").buffered == 0
    await client.publish("s", generate(3), block=False)
    assert client.publisher("s").buffered == 3
    route.release()
    await client.flush(timeout=10)


async def test_a_slow_server_throttles_the_publisher_not_the_memory(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(max_buffer=20, max_batch=5, max_in_flight=2)
    publisher = client.publisher("s")
    route.hold()
    task = asyncio.create_task(client.publish("s", make_events(100)))
    await asyncio.sleep(0.05)
    assert not task.done()  # waiting for space, not queueing without bound
    assert publisher.buffered == 20
    route.release()
    await asyncio.wait_for(task, 10)
    await client.flush(timeout=10)
    assert len(route.stored) == 100
