"""The client's replay by time and dead-letter calls, against a real in-process server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest

import streamkit
import streamkit.sync
from streamkit import Event
from streamkit.errors import APIError, ValidationError
from streamkit.reads.dead_letters import DeadLetter
from streamkit.testing import ServerHandle


@pytest.fixture
async def client(streamkit_server: ServerHandle) -> AsyncIterator[streamkit.AsyncClient]:
    async with streamkit.connect(streamkit_server.url, timeout=5.0) as c:
        yield c


async def _history(client: streamkit.AsyncClient) -> datetime:
    """a, b, then (a moment later) c, d in "orders"; returns c's insert time."""
    await client.create_stream("orders")
    await client.send("orders", [Event("a", key="k.a"), Event("b", key="k.b")])
    await asyncio.sleep(0.05)
    await client.send("orders", [Event("c", key="k.c"), Event("d", key="k.d")])
    (c,) = await client.get("orders", from_seq=3, max_count=1)
    assert c.data == "c" and c.inserted_at is not None
    return c.inserted_at


async def test_get_and_iter_from_time(client: streamkit.AsyncClient) -> None:
    at_c = await _history(client)
    assert [e.data for e in await client.get("orders", from_time=at_c)] == ["c", "d"]
    # Pages after the first go on by seq: nothing skipped, nothing twice.
    seen = [e.data async for e in client.iter("orders", from_time=at_c, batch_size=1)]
    assert seen == ["c", "d"]
    assert await client.get("orders", from_time=at_c + timedelta(hours=1)) == []
    # A naive datetime is local time, as datetime.timestamp() takes it.
    naive_local = at_c.astimezone().replace(tzinfo=None)
    assert [e.data for e in await client.get("orders", from_time=naive_local)] == ["c", "d"]


async def test_from_time_reads_forward_only(client: streamkit.AsyncClient) -> None:
    at_c = await _history(client)
    with pytest.raises(ValueError, match="forward only"):
        await client.get("orders", from_time=at_c, direction=streamkit.BACKWARD)
    with pytest.raises(ValueError, match="not both"):
        await client.get("orders", from_time=at_c, from_seq=1)


async def test_iter_from_time_follows_into_live_events(client: streamkit.AsyncClient) -> None:
    await _history(client)
    await asyncio.sleep(0.01)
    since = datetime.now(timezone.utc)  # after d: only what comes next
    got: list[object] = []

    async def follow() -> None:
        async for event in client.iter("orders", from_time=since, follow=True):
            got.append(event.data)
            return

    follower = asyncio.create_task(follow(), name="follow-from-time")
    await asyncio.sleep(0.1)
    assert got == []
    await client.send("orders", [Event("e")])
    await asyncio.wait_for(follower, 10)
    assert got == ["e"]


async def test_tail_from_time(client: streamkit.AsyncClient) -> None:
    at_c = await _history(client)
    got: list[object] = []
    async for event in client.tail("orders", from_time=at_c):
        got.append(event.data)
        if len(got) == 2:
            break
    assert got == ["c", "d"]


async def test_consumers_start_at_a_time(client: streamkit.AsyncClient) -> None:
    at_c = await _history(client)
    await client.create_consumer("orders", "billing", start=at_c)
    assert [e.data for e in await client.receive("orders", "billing")] == ["c", "d"]
    seen: list[object] = []
    async with client.subscribe("orders", start=at_c, wait_for=0.2) as sub:
        async for event in sub:
            seen.append(event.data)
            await event.ack()
            if len(seen) == 2:
                break
    assert seen == ["c", "d"]


async def _dead(client: streamkit.AsyncClient, count: int) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing", max_deliver=1)
    await client.send("orders", [Event(f"m{i}") for i in range(count)])
    got = await client.receive("orders", "billing", batch_size=count)
    await client.nack("orders", "billing", got)


async def test_dead_letters_iterate_every_page(client: streamkit.AsyncClient) -> None:
    await _dead(client, 5)
    dead = [d async for d in client.dead_letters("orders", "billing", batch_size=2)]
    assert all(isinstance(d, DeadLetter) for d in dead)
    assert [d.seq for d in dead] == [1, 2, 3, 4, 5]
    assert [d.event.data for d in dead] == ["m0", "m1", "m2", "m3", "m4"]
    assert {d.delivery_count for d in dead} == {1}
    assert {d.last_error for d in dead} == {None}
    assert dead[0].event.ack_id is None  # not a delivery: act on it by seq


async def test_redrive_and_discard(client: streamkit.AsyncClient) -> None:
    await _dead(client, 3)
    assert await client.redrive("orders", "billing", seqs=[2]) == 1
    (again,) = await client.receive("orders", "billing", wait_for=2)
    assert (again.data, again.delivery_count) == ("m1", 1)
    await client.ack("orders", "billing", [again])
    assert await client.discard_dead("orders", "billing", seqs=[1]) == 1
    assert [d.seq async for d in client.dead_letters("orders", "billing")] == [3]
    assert await client.discard_dead("orders", "billing") == 1
    assert [d async for d in client.dead_letters("orders", "billing")] == []
    consumer = await client.get_consumer("orders", "billing")
    assert (consumer.pending, consumer.in_flight, consumer.dead) == (0, 0, 0)
    with pytest.raises(ValueError, match="positive"):
        await client.redrive("orders", "billing", seqs=[0])


async def test_reset_consumer(client: streamkit.AsyncClient) -> None:
    at_c = await _history(client)
    await client.create_consumer("orders", "billing")
    first = await client.receive("orders", "billing", batch_size=10)
    await client.ack("orders", "billing", first)
    await client.reset_consumer("orders", "billing", start=at_c)
    assert [e.data for e in await client.receive("orders", "billing")] == ["c", "d"]
    await client.reset_consumer("orders", "billing", start=2)
    assert [e.data for e in await client.receive("orders", "billing")] == ["b", "c", "d"]
    await client.reset_consumer("orders", "billing", start="new")
    assert await client.receive("orders", "billing") == []
    with pytest.raises(ValidationError) as bad:
        await client.reset_consumer("orders", "billing", start="yesterday")  # type: ignore[arg-type]
    assert "start" in (bad.value.validation_errors or {})
    with pytest.raises(APIError) as missing:
        await client.reset_consumer("orders", "nobody", start="all")
    assert missing.value.status == 404


async def test_the_reason_of_the_last_nack_is_the_last_error(
    client: streamkit.AsyncClient,
) -> None:
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing", max_deliver=2)
    await client.send("orders", [Event({"total": "twelve"})])
    attempts = 0
    async with client.subscribe("orders", consumer="billing", wait_for=0.2) as sub:
        async for event in sub:
            attempts += 1
            try:
                float(event.json()["total"])
            except ValueError as exc:
                await event.nack(reason=f"attempt {attempts}: {exc}")
            if attempts == 2:
                break
    dead = [d async for d in client.dead_letters("orders", "billing")]
    assert [(d.seq, d.delivery_count) for d in dead] == [(1, 2)]
    assert dead[0].last_error == "attempt 2: could not convert string to float: 'twelve'"
    long = "x" * 5000  # cut to what the server keeps, not refused
    await client.redrive("orders", "billing")
    (again,) = await client.receive("orders", "billing", wait_for=2)
    await client.nack("orders", "billing", [again], reason=long)
    (last,) = await client.receive("orders", "billing", wait_for=2)
    await client.nack("orders", "billing", [last], reason=long)
    (dead_again,) = [d async for d in client.dead_letters("orders", "billing")]
    assert dead_again.last_error == "x" * 1024


async def test_sync_facade_replays_and_acts_on_dead_letters(
    client: streamkit.AsyncClient, streamkit_server: ServerHandle
) -> None:
    await client.create_stream("orders")
    await client.send("orders", [Event("a")])
    await asyncio.sleep(0.01)
    since = datetime.now(timezone.utc)
    await client.send("orders", [Event("b"), Event("c")])
    await client.create_consumer("orders", "billing", max_deliver=1)
    await client.nack("orders", "billing", await client.receive("orders", "billing"))

    def script() -> None:  # blocking code, run in a thread so this loop keeps serving
        with streamkit.sync.Client(streamkit_server.url) as c:
            assert [e.data for e in c.get("orders", from_time=since)] == ["b", "c"]
            assert [e.data for e in c.iter("orders", from_time=since)] == ["b", "c"]
            assert [d.seq for d in c.dead_letters("orders", "billing")] == [1, 2, 3]
            assert c.redrive("orders", "billing", [1]) == 1
            assert c.discard_dead("orders", "billing") == 2
            assert c.reset_consumer("orders", "billing", start=since).dead == 0

    await asyncio.to_thread(script)
    assert [e.data for e in await client.receive("orders", "billing")] == ["b", "c"]
