"""AsyncClient against a real in-process server: admin calls, send/receive, errors, reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import streamkit
import streamkit.sync
from streamkit import BACKWARD, Event
from streamkit.testing import ServerHandle, run_server


@pytest.fixture
async def client(streamkit_server: ServerHandle) -> AsyncIterator[streamkit.AsyncClient]:
    async with streamkit.connect(streamkit_server.url, timeout=5.0) as c:
        yield c


async def test_ping(client: streamkit.AsyncClient) -> None:
    pong = await client.ping()
    assert pong["ok"] is True
    assert pong["version"]


async def test_stream_lifecycle(client: streamkit.AsyncClient) -> None:
    created = await client.create_stream("orders")
    assert created.name == "orders" and created.message_count == 0
    again = await client.create_stream("orders", exist_ok=True)
    assert again.id == created.id
    with pytest.raises(streamkit.ValidationError) as info:
        await client.create_stream("orders")
    assert info.value.status == 422
    assert info.value.validation_errors["name"] == ["has already been taken"]
    assert [s.name for s in await client.list_streams()] == ["orders"]
    assert (await client.get_stream(created.id)).name == "orders"
    await client.delete_stream("orders")
    with pytest.raises(streamkit.NotFound, match="No `stream` found"):
        await client.get_stream("orders")
    await client.delete_stream("orders", missing_ok=True)


async def test_consumer_lifecycle(client: streamkit.AsyncClient) -> None:
    await client.create_stream("orders")
    consumer = await client.create_consumer(
        "orders", "billing", "orders.>", ack_wait=2.5, max_ack_pending=50, max_deliver=3
    )
    assert (consumer.filter_key_pattern, consumer.ack_wait_ms) == ("orders.>", 2500)
    assert (consumer.max_ack_pending, consumer.max_deliver) == (50, 3)
    same = await client.create_consumer("orders", "billing", "orders.>", exist_ok=True)
    assert same.id == consumer.id
    assert [c.name for c in await client.list_consumers("orders")] == ["billing"]
    await client.delete_consumer("orders", "billing")
    with pytest.raises(streamkit.NotFound, match="No `consumer` found"):
        await client.get_consumer("orders", "billing")
    await client.delete_consumer("orders", "billing", missing_ok=True)


async def test_invalid_names_are_rejected_with_the_field(client: streamkit.AsyncClient) -> None:
    with pytest.raises(streamkit.ValidationError) as info:
        await client.create_stream("no spaces")
    assert "name" in info.value.validation_errors
    await client.create_stream("orders")
    with pytest.raises(streamkit.ValidationError) as info:
        await client.create_consumer("orders", "c", "orders.>.x")
    assert "filter_key_pattern" in info.value.validation_errors


async def test_send_receive_ack_nack(client: streamkit.AsyncClient) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing", "orders.>")
    events = [
        Event({"n": 1}, key="orders.eu.1"),
        Event("plain text", key="orders.us.2"),
        Event(b"\x00\xffbinary", key="orders.eu.3"),
        Event(b"utf8 bytes", key="orders.eu.4", headers={"trace": "t1"}),
    ]
    acks = await client.send("orders", events)
    assert [a.seq for a in acks] == [1, 2, 3, 4]
    assert [a.id for a in acks] == [e.id for e in events]

    received = await client.receive("orders", "billing", batch_size=10)
    assert [e.data for e in received] == [{"n": 1}, "plain text", b"\x00\xffbinary", b"utf8 bytes"]
    assert [e.id for e in received] == [e.id for e in events]
    assert received[3].headers == {"trace": "t1"}
    assert all(e.delivery_count == 1 and e.stream == "orders" for e in received)

    await client.ack("orders", "billing", received[:3])
    await client.nack("orders", "billing", [received[3]])
    (again,) = await client.receive("orders", "billing", batch_size=10)
    assert again.seq == 4 and again.delivery_count == 2
    await client.ack("orders", "billing", [again.ack_id or ""])
    assert await client.receive("orders", "billing") == []


async def test_send_is_idempotent_by_event_id(client: streamkit.AsyncClient) -> None:
    await client.create_stream("orders")
    event = Event("once", key="orders.1")
    (first,) = await client.send("orders", [event])
    (second,) = await client.send("orders", [event])
    assert first.seq == second.seq
    assert (await client.get_stream("orders")).message_count == 1


async def test_rejected_batch_names_the_index_and_stores_nothing(
    client: streamkit.AsyncClient,
) -> None:
    await client.create_stream("orders")
    good = Event("ok", key="orders.1").to_wire("orders")
    bad = {**Event("bad").to_wire("orders"), "key": "orders.*"}
    with pytest.raises(streamkit.ValidationError) as info:
        await client.api.send("orders", [good, bad])
    assert list(info.value.validation_errors) == ["messages[1].key"]
    assert (await client.get_stream("orders")).message_count == 0


async def test_unknown_stream_is_not_found(client: streamkit.AsyncClient) -> None:
    with pytest.raises(streamkit.NotFound):
        await client.send("missing", [Event("x")])
    with pytest.raises(streamkit.NotFound):
        await client.receive("missing", "c")


async def test_receive_long_poll_returns_when_an_event_arrives(
    client: streamkit.AsyncClient,
) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing")
    waiting = asyncio.create_task(client.receive("orders", "billing", wait_for=10.0))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await client.send("orders", [Event("late", key="orders.1")])
    (event,) = await asyncio.wait_for(waiting, 5.0)
    assert event.data == "late"


async def test_unauthorized_without_the_api_key() -> None:
    async with run_server(api_key="s3cret") as server:
        async with streamkit.connect(server.url) as anonymous:
            with pytest.raises(streamkit.Unauthorized):
                await anonymous.list_streams()
        async with streamkit.connect(server.url, api_key="s3cret") as authorized:
            assert await authorized.list_streams() == []


async def test_connect_error_when_nothing_listens(unused_tcp_port: int) -> None:
    async with streamkit.connect(f"http://127.0.0.1:{unused_tcp_port}", retries=1) as c:
        with pytest.raises(streamkit.ConnectError):
            await c.ping()


async def test_closed_client_refuses_calls(streamkit_server: ServerHandle) -> None:
    c = streamkit.connect(streamkit_server.url)
    await c.close()
    with pytest.raises(streamkit.ClientClosed):
        await c.ping()


async def _fill(client: streamkit.AsyncClient, n: int) -> None:
    await client.create_stream("log")
    events = [Event({"i": i}, key=f"log.{'odd' if i % 2 else 'even'}") for i in range(1, n + 1)]
    for start in range(0, n, 1000):
        await client.send("log", events[start : start + 1000])


async def test_get_forward_backward_and_from_seq(client: streamkit.AsyncClient) -> None:
    await _fill(client, 30)
    first = await client.get("log", max_count=3)
    assert [e.seq for e in first] == [1, 2, 3]
    assert [e.seq for e in await client.get("log", max_count=3, from_seq=10)] == [10, 11, 12]
    newest = await client.get("log", max_count=3, direction=BACKWARD)
    assert [e.seq for e in newest] == [30, 29, 28]
    before = await client.get("log", max_count=3, from_seq=10, direction=BACKWARD)
    assert [e.seq for e in before] == [10, 9, 8]
    odd = await client.get("log", max_count=100, key_pattern="log.odd")
    assert [e.seq for e in odd] == list(range(1, 31, 2))


async def test_iter_pages_through_the_whole_stream(client: streamkit.AsyncClient) -> None:
    await _fill(client, 2500)
    seqs = [e.seq async for e in client.iter("log", batch_size=700)]
    assert seqs == list(range(1, 2501))
    backward = [e.seq async for e in client.iter("log", direction=BACKWARD, batch_size=1000)]
    assert backward == list(range(2500, 0, -1))


async def test_iter_follow_switches_to_live_without_gap_or_duplicate(
    client: streamkit.AsyncClient,
) -> None:
    await _fill(client, 50)
    seen: list[int] = []

    async def follow() -> None:
        async for event in client.iter("log", batch_size=20, follow=True):
            seen.append(event.seq or 0)
            if len(seen) == 60:
                return

    reader = asyncio.create_task(follow())
    for i in range(10):
        await client.send("log", [Event({"live": i}, key="log.live")])
    await asyncio.wait_for(reader, 10.0)
    assert seen == list(range(1, 61))


async def test_sync_facade(streamkit_server: ServerHandle) -> None:
    def script() -> None:  # blocking code, run in a thread so this loop keeps serving
        with streamkit.sync.Client(streamkit_server.url) as c:
            assert c.ping()["ok"] is True
            c.create_stream("orders")
            c.send("orders", [Event({"n": i}, key="orders.x") for i in range(3)])
            assert [e.json()["n"] for e in c.get("orders", max_count=10)] == [0, 1, 2]
            assert [e.seq for e in c.iter("orders", batch_size=2)] == [1, 2, 3]
            live = c.tail("orders", from_seq=2)
            assert [next(live).seq, next(live).seq] == [2, 3]
            live.close()

    await asyncio.to_thread(script)
