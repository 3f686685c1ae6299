"""Flush, close and cancellation: nothing is half-queued, nothing is silently dropped."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator

import pytest

import streamkit
from streamkit import ClientClosed, Event, Nack, StreamkitError

from .conftest import ClientFactory
from .fakes import FakeSendRoute, Outcomes, make_events


def publisher_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("streamkit-publisher:")]


async def test_flush_times_out_then_succeeds(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client()
    route.hold()
    events = make_events(10)
    await client.publish("s", events)
    with pytest.raises(streamkit.TimeoutError, match="10 event"):
        await client.flush(timeout=0.05)
    with pytest.raises(builtins.TimeoutError):  # also the builtin, for generic handlers
        await client.flush(timeout=0.01)
    route.release()
    await client.flush(timeout=10)
    assert all(e.acked for e in events)


async def test_flush_waits_only_for_what_was_queued_before_it(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(linger=60.0)  # only flush makes a partial batch go
    first = make_events(3)
    await client.publish("s", first)
    await client.flush(timeout=10)
    assert all(e.acked for e in first)
    later = Event("later")
    await client.publish("s", later)
    await client.flush(timeout=10)
    assert later.acked


async def test_flush_with_nothing_published_returns(client: streamkit.AsyncClient) -> None:
    await client.flush(timeout=1)


async def test_close_flushes_what_is_queued(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(linger=60.0)
    outcomes = Outcomes()
    events = make_events(50, keys=3)
    await client.publish("s", events, on_ack=outcomes.on_ack, on_nack=outcomes.on_nack)
    await client.close()
    outcomes.assert_each_settled_once(events)
    assert len(outcomes.acks) == 50


async def test_close_nacks_what_could_not_be_sent(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(close_timeout=0.1, retry_deadline=60.0, max_batch=10)
    route.fail(503, times=10_000)
    nacks: list[Nack] = []

    async def on_nack(nack: Nack) -> None:  # async callbacks run during close too
        await asyncio.sleep(0)
        nacks.append(nack)

    events = make_events(35, keys=4)
    await client.publish("s", events, on_nack=on_nack)
    await asyncio.wait_for(client.close(), 5)
    assert sorted(n.id for n in nacks) == sorted(e.id for e in events)
    assert {n.code for n in nacks} == {"closed"}
    assert not publisher_tasks()
    for event in events:
        with pytest.raises(Nack):
            await event.wait_for_ack()


async def test_publish_after_close_raises(client: streamkit.AsyncClient) -> None:
    publisher = client.publisher("s")
    await client.close()
    with pytest.raises(ClientClosed):
        await client.publish("s", Event("late"))
    with pytest.raises(ClientClosed):
        await publisher.publish(Event("late"))


async def test_close_wakes_a_publish_blocked_on_a_full_buffer(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(max_buffer=5, close_timeout=0.05)
    route.hold()
    events = make_events(8)
    task = asyncio.create_task(client.publish("s", events))
    await asyncio.sleep(0.02)
    await asyncio.wait_for(client.close(), 5)
    with pytest.raises(ClientClosed):
        await asyncio.wait_for(task, 5)
    assert all(e.nacked for e in events[:5])
    assert all(not e.acked and not e.nacked for e in events[5:])
    route.release()


async def test_cancelling_a_blocked_publish_leaves_nothing_half_queued(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(max_buffer=10)
    publisher = client.publisher("s")
    route.hold()
    events = make_events(25, keys=3)
    outcomes = Outcomes()
    task = asyncio.create_task(
        client.publish("s", events, on_ack=outcomes.on_ack, on_nack=outcomes.on_nack)
    )
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert publisher.buffered == 10
    queued, not_queued = events[:10], events[10:]
    for event in not_queued:
        with pytest.raises(StreamkitError, match="has not been published"):
            await event.wait_for_ack()
    route.release()
    await client.flush(timeout=10)
    outcomes.assert_each_settled_once(queued)
    await client.publish("s", not_queued, on_ack=outcomes.on_ack, on_nack=outcomes.on_nack)
    await client.flush(timeout=10)
    outcomes.assert_each_settled_once(events)
    assert sorted(route.stored_ids()) == sorted(e.id for e in events)


async def test_background_tasks_are_named_and_gone_after_close(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(max_in_flight=3)
    await client.publish("orders", Event("x"))
    names = sorted(t.get_name() for t in publisher_tasks())
    assert names == [f"streamkit-publisher:orders:lane-{i}" for i in range(3)]
    await client.close()
    assert not publisher_tasks()


async def test_concurrent_closes_all_wait_for_the_first(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(linger=60.0)
    publisher = client.publisher("s")
    events = make_events(5)
    await client.publish("s", events)
    await asyncio.gather(publisher.close(2), publisher.close(2), client.close())
    assert all(e.acked for e in events)


async def test_a_failing_nack_callback_at_close_does_not_stop_the_others(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(close_timeout=0.05, retry_deadline=60.0)
    route.fail(503, times=10_000)
    calls = 0

    def on_nack(nack: Nack) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("callback bug")

    await client.publish("s", make_events(6, keys=2), on_nack=on_nack)
    await client.close()
    assert calls == 6


async def test_a_callback_may_publish_again_while_there_is_room(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(max_buffer=10)
    route.fail(503)
    route.fail(404)
    retried: list[Event] = []

    async def republish(nack: Nack) -> None:
        [event] = [e for e in events if e.id == nack.id]
        retried.append(event)
        await client.publish("s", event)

    events = make_events(4)
    await client.publish("s", events, on_nack=republish)
    await client.flush(timeout=10)  # the republished events were queued before it began
    await client.flush(timeout=10)
    assert retried == events
    assert all(e.acked for e in events)


async def test_a_callback_that_cannot_get_buffer_space_fails_instead_of_hanging(
    make_client: ClientFactory, route: FakeSendRoute, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(max_buffer=4)
    route.fail(404)

    async def republish(nack: Nack) -> None:
        await client.publish("s", Event("more"), Event("and more"))

    await client.publish("s", make_events(4), on_nack=republish)
    await asyncio.wait_for(client.flush(), 10)
    assert "cannot wait for space" in caplog.text


async def test_flush_from_a_callback_raises_instead_of_hanging(
    client: streamkit.AsyncClient, route: FakeSendRoute
) -> None:
    errors: list[BaseException] = []

    async def on_ack(ack: object) -> None:
        try:
            await client.flush(timeout=None)
        except RuntimeError as exc:
            errors.append(exc)

    await client.publish("s", Event("x"), on_ack=on_ack)
    await asyncio.wait_for(client.flush(), 10)
    assert len(errors) == 1


async def test_an_async_iterable_publishing_across_a_close_stops_cleanly(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client()
    produced: list[Event] = []
    closing = asyncio.Event()

    async def slow_source() -> AsyncIterator[Event]:
        for event in make_events(10):
            produced.append(event)
            yield event
            if len(produced) == 3:
                closing.set()
            await asyncio.sleep(0.01)

    task = asyncio.create_task(client.publish("s", slow_source()))
    await asyncio.wait_for(closing.wait(), 5)
    await client.close()
    with pytest.raises(ClientClosed):
        await asyncio.wait_for(task, 5)
    queued = [e for e in produced if e.acked or e.nacked]
    assert queued and all(e.acked or e.nacked for e in queued)
