"""Publishing against a well-behaved (mocked) server: forms, callbacks, batching, acks."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone

import pytest

from streamkit import Ack, AsyncClient, Event, Nack, PublisherConfig, StreamkitError
from streamkit.models import Publication

from .conftest import ClientFactory
from .fakes import FakeSendRoute, Outcomes, encoded_size, make_events


async def test_publish_returns_once_queued_not_stored(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    route.hold()
    event = Event({"total": 12.5}, key="orders.eu.7")
    await client.publish("orders", event)
    assert not event.acked and not event.nacked
    route.release()
    ack = await event.wait_for_ack(timeout=5)
    assert isinstance(ack, Ack)
    assert (ack.id, ack.seq) == (event.id, 1)
    assert ack.committed.year == 2024
    assert route.stored[0]["key"] == "orders.eu.7"


async def test_every_form_of_publish_is_accepted_in_order(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    events = make_events(12)

    def generate() -> Iterator[Event]:
        yield from events[5:8]

    async def agenerate() -> AsyncIterator[Event]:
        for event in events[8:]:
            yield event

    await client.publish("s", events[0])
    await client.publish("s", events[1], events[2])
    await client.publish("s", [events[3], events[4]])
    await client.publish("s", generate(), agenerate())
    await client.flush()
    assert route.stored_ids() == [e.id for e in events]
    assert all(m["key"] == "s" for m in route.stored)  # no key: the stream's name


async def test_each_event_gets_one_callback_sync_or_async(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    events = make_events(300, keys=7)
    async_acks: list[Ack] = []

    async def on_ack(ack: Ack) -> None:
        await asyncio.sleep(0)
        async_acks.append(ack)

    outcomes = Outcomes()
    await client.publish("s", events[:150], on_ack=outcomes.on_ack, on_nack=outcomes.on_nack)
    await client.publish("s", events[150:], on_ack=on_ack, on_nack=outcomes.on_nack)
    await client.flush()
    outcomes.acks += async_acks
    outcomes.assert_each_settled_once(events)
    assert sorted(a.seq for a in outcomes.acks) == list(range(1, 301))


async def test_a_failing_callback_is_logged_and_the_loop_goes_on(
    client: AsyncClient, route: FakeSendRoute, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(ack: Ack) -> None:
        raise RuntimeError("boom")

    async def explode_later(ack: Ack) -> None:
        raise RuntimeError("boom later")

    first, second = make_events(5), make_events(5)
    with caplog.at_level(logging.ERROR, logger="streamkit"):
        await client.publish("s", first, on_ack=explode)
        await client.publish("s", second, on_ack=explode_later)
        await client.flush()
        later = Event("after")
        await client.publish("s", later)
        await later.wait_for_ack(timeout=5)
    assert all(e.acked for e in first + second)
    failures = [r for r in caplog.records if "callback failed" in r.getMessage()]
    assert len(failures) == 10


async def test_wait_for_ack_raises_the_nack(client: AsyncClient, route: FakeSendRoute) -> None:
    route.fail(404, summary="Not found: No `stream` found matching the provided ID or name")
    event = Event("x")
    await client.publish("missing", event)
    with pytest.raises(Nack) as info:
        await event.wait_for_ack(timeout=5)
    assert info.value.id == event.id
    assert info.value.code == "not_found"
    assert "No `stream` found" in info.value.error


async def test_batches_respect_max_batch(make_client: ClientFactory, route: FakeSendRoute) -> None:
    client = make_client(max_batch=10, max_in_flight=1)
    await client.publish("s", make_events(35))
    await client.flush()
    assert max(route.request_sizes()) == 10
    assert sum(route.request_sizes()) == 35


async def test_batches_respect_max_bytes(make_client: ClientFactory, route: FakeSendRoute) -> None:
    events = make_events(20, size=400)
    client = make_client(max_bytes=3 * encoded_size(events[0]), max_in_flight=1)
    await client.publish("s", events)
    await client.flush()
    assert max(route.request_sizes()) == 3
    assert sum(route.request_sizes()) == 20


async def test_an_event_over_max_bytes_goes_alone(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(max_bytes=100)
    big = Event("x" * 1000)
    await client.publish("s", big)
    await big.wait_for_ack(timeout=5)
    assert route.request_sizes() == [1]


async def test_linger_sends_a_lone_event_without_flush(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(linger=0.02)
    event = Event("alone")
    await client.publish("s", event)
    await event.wait_for_ack(timeout=5)
    assert route.request_sizes() == [1]


async def test_events_published_together_share_a_batch(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(linger=0.05, max_in_flight=1)
    await client.publish("s", make_events(30))
    await client.flush()
    assert route.request_sizes() == [30]


async def test_an_event_in_flight_cannot_be_published_again(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    route.hold()
    event = Event("once")
    await client.publish("s", event)
    with pytest.raises(StreamkitError, match="already being published"):
        await client.publish("s", event)
    route.release()
    first = await event.wait_for_ack(timeout=5)
    await client.publish("s", event)  # settled: publishing again is allowed, and deduped
    again = await event.wait_for_ack(timeout=5)
    assert again.seq == first.seq
    assert len(route.stored) == 1


async def test_publish_rejects_what_is_not_an_event(client: AsyncClient) -> None:
    with pytest.raises(TypeError):
        await client.publish("s", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await client.publish("s", ["not an event"])  # type: ignore[list-item]


def test_invalid_events_raise_at_construction() -> None:
    with pytest.raises(ValueError, match="wildcards"):
        Event("x", key="orders.*")
    with pytest.raises(ValueError, match="byte limit"):
        Event("x" * (1024 * 1024 + 1))


@pytest.mark.parametrize(
    "bad",
    [
        {"max_batch": 0},
        {"max_batch": 1001},
        {"max_in_flight": 0},
        {"max_buffer": 0},
        {"max_bytes": 0},
        {"linger": -1.0},
        {"retry_deadline": -1.0},
    ],
)
def test_config_is_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PublisherConfig(**bad)  # type: ignore[arg-type]


async def test_publisher_is_one_per_stream(client: AsyncClient) -> None:
    assert client.publisher("a") is client.publisher("a")
    assert client.publisher("a") is not client.publisher("b")


async def test_waiters_made_before_and_after_the_outcome_get_it(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    route.hold()
    event = Event("x")
    await client.publish("s", event)
    early = asyncio.create_task(event.wait_for_ack(timeout=5))
    with pytest.raises(asyncio.TimeoutError):
        await event.wait_for_ack(timeout=0.01)  # a timed-out wait leaves the others waiting
    route.release()
    ack = await early
    assert await event.wait_for_ack() is ack


async def test_only_the_latest_publication_of_an_event_can_be_resolved() -> None:
    event = Event("x")
    first = Publication(event)
    ack = Ack(event.id, 1, datetime.now(timezone.utc))
    assert first.settle(ack) and event.acked
    second = Publication(event)
    assert not event.acked and not event.nacked
    assert not first.settle(Nack(event.id, "closed", "stale"))  # an old batch's entry
    assert second.settle(Nack(event.id, "closed", "closed")) and event.nacked
    assert not second.settle(ack)  # settled once
    with pytest.raises(Nack):
        await event.wait_for_ack()


async def test_a_settled_event_and_its_publication_make_no_reference_cycle(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    # The event holds its publication; were it the other way round too, every published
    # event would be garbage only the cyclic collector frees (issue 13: GC cost per event).
    acked, nacked = Event("a"), Event("b")
    await client.publish("s", acked)
    await client.flush()
    route.fail(422)
    await client.publish("s", nacked)
    await client.flush()
    assert acked.acked and nacked.nacked
    for event in (acked, nacked):
        assert event.publication is not None
        assert event not in gc.get_referents(event.publication)


async def test_an_event_is_sent_as_it_was_when_published(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    route.hold()  # the first request waits; the second event queues behind it
    first, second = Event("a", key="k"), Event("b", key="k", headers={"h": "1"})
    await client.publish("s", [first, second])
    second.headers["h"] = "changed"
    second.key = "other"
    route.release()
    await client.flush(timeout=5)
    assert [(m["key"], m.get("headers")) for m in route.stored] == [("k", None), ("k", {"h": "1"})]


async def test_a_queued_event_nobody_keeps_is_freed_before_it_is_acked(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    # In flight, a publication holds the event's encoding, not the event: thousands of
    # events in flight are not thousands more objects for the garbage collector.
    route.hold()
    await client.publish("s", (Event(str(i)) for i in range(100)))
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, Event)]
    route.release()
    await client.flush(timeout=5)
    assert len(route.stored) == 100


async def test_a_server_that_answers_an_ack_per_message_is_understood(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    # The publisher asks for ?acks=runs; a server that does not know it answers as before.
    route.ack_runs = False
    events = [Event(f"e{i}") for i in range(5)]
    await client.publish("s", events)
    await client.flush()
    assert [(await e.wait_for_ack()).seq for e in events] == [1, 2, 3, 4, 5]


async def test_acks_come_as_runs_and_each_event_gets_its_seq(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    first = [Event(f"e{i}") for i in range(3)]
    await client.publish("s", first)
    await client.flush()
    again = [first[1], Event("new")]  # a resent id keeps its seq: a run of its own
    await client.publish("s", again)
    await client.flush()
    assert [(await e.wait_for_ack()).seq for e in again] == [2, 4]
