"""The publisher against the real server (the ``streamkit_server`` fixture)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator

import pytest

import streamkit
from streamkit import AsyncClient, Event, Nack, PublisherConfig
from streamkit.testing import ServerHandle
from tests.stream_reads import read_all

from .fakes import Outcomes, make_events


@pytest.fixture
async def client(streamkit_server: ServerHandle) -> AsyncIterator[AsyncClient]:
    config = PublisherConfig(linger=0.002, max_batch=250, backoff=0.01, retry_deadline=5.0)
    async with streamkit.connect(streamkit_server.url, publisher=config, timeout=5.0) as client:
        await client.create_stream("s")
        yield client


async def test_events_are_stored_once_each_in_per_key_order(client: AsyncClient) -> None:
    events = make_events(5000, keys=20)
    outcomes = Outcomes()
    for start in range(0, len(events), 500):
        chunk = events[start : start + 500]
        await client.publish("s", chunk, on_ack=outcomes.on_ack, on_nack=outcomes.on_nack)
    await client.flush(timeout=30)

    outcomes.assert_each_settled_once(events)
    assert not outcomes.nacks
    assert (await client.get_stream("s")).message_count == 5000
    stored = await read_all(client, "s")
    assert len({e.id for e in stored}) == 5000
    ack_seq = {a.id: a.seq for a in outcomes.acks}
    assert all(ack_seq[e.id] == e.seq for e in stored)
    stored_by_key: dict[str, list[str]] = defaultdict(list)
    for event in stored:  # read in seq order
        stored_by_key[event.key or ""].append(event.id)
    published_by_key: dict[str, list[str]] = defaultdict(list)
    for event in events:
        published_by_key[event.key or ""].append(event.id)
    assert stored_by_key == published_by_key


async def test_publishing_an_event_again_is_acked_with_its_first_seq(client: AsyncClient) -> None:
    event = Event({"total": 12.5}, key="orders.eu.7")
    await client.publish("s", event)
    first = await event.wait_for_ack(timeout=10)
    await client.publish("s", event)
    again = await event.wait_for_ack(timeout=10)
    assert again.seq == first.seq
    assert (await client.get_stream("s")).message_count == 1


async def test_the_server_rejecting_one_event_stores_the_others(client: AsyncClient) -> None:
    events = make_events(5)
    events[2].key = "not a valid key"  # past Event()'s own check, so the server sees it
    outcomes = Outcomes()
    await client.publish("s", events, on_ack=outcomes.on_ack, on_nack=outcomes.on_nack)
    await client.flush(timeout=10)
    outcomes.assert_each_settled_once(events)
    [nack] = outcomes.nacks
    assert (nack.id, nack.code) == (events[2].id, "invalid")
    assert nack.error.startswith("key ")
    stored = await read_all(client, "s")
    assert [e.id for e in stored] == [e.id for i, e in enumerate(events) if i != 2]


async def test_publishing_to_a_missing_stream_nacks_not_found(client: AsyncClient) -> None:
    event = Event("x")
    await client.publish("nope", event)
    with pytest.raises(Nack) as info:
        await event.wait_for_ack(timeout=10)
    assert info.value.code == "not_found"


async def test_payload_types_round_trip(client: AsyncClient) -> None:
    events = [Event("text"), Event({"a": [1, 2]}), Event(b"\xff\x00 binary")]
    await client.publish("s", events)
    await client.flush(timeout=10)
    for event in events:
        await event.wait_for_ack(timeout=10)
    stored = await read_all(client, "s")
    assert [e.data for e in stored] == [e.data for e in events]


async def test_utf8_bytes_round_trip(client: AsyncClient) -> None:
    event = Event(b'{"temp": 72}', "application/json")
    await client.publish("s", event)
    await event.wait_for_ack(timeout=10)
    [stored] = await read_all(client, "s")
    assert stored.data == b'{"temp": 72}'
