"""Latency without tuning: a lane with nothing in flight sends at once, and what arrives
while its request is in flight forms the next batch.

The send route here is a recording stand-in for `API.send`, so each test sees exactly
when a batch started relative to the publish calls (how many had returned), and holds
each response until the test lets it go. No wall clock is read: the loop's clock is
frozen, so a linger timer could never fire and only "at once" can pass. The last test
does the same against the real server, holding the first request back at the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timezone
from typing import Any, cast

import orjson
import pytest

import streamkit
from streamkit import Event, PublisherConfig
from streamkit._http.api import API
from streamkit.publisher import YIELD_EVENTS, Publisher
from streamkit.testing import ServerHandle
from tests.stream_reads import read_all

TURNS = 50
"""Loop turns a test gives the lane to start a request (it needs a handful)."""


class RecordingSend:
    """Stands in for `API.send_for_seqs`: records each batch, answers when `answer` is called."""

    takes_split = False  # JSON bodies only, as for a server that does not take split ones

    def __init__(self) -> None:
        self.published = 0
        """Publish calls that have returned so far; the test counts them."""
        self.batches: list[tuple[int, list[str]]] = []
        """Each request: how many publish calls had returned when it started, and its ids."""
        self._answers: list[asyncio.Future[None]] = []
        self._seq = 0

    async def send_for_seqs(
        self,
        stream: str,
        messages: Sequence[str],
        *,
        blobs: Sequence[bytes] = (),
        retry: bool = True,
    ) -> tuple[list[int], list[datetime]]:
        """Record the batch, wait to be answered, ack every message."""
        self.batches.append((self.published, [orjson.loads(m)["id"] for m in messages]))
        answer = asyncio.get_running_loop().create_future()
        self._answers.append(answer)
        await answer
        first, self._seq = self._seq + 1, self._seq + len(messages)
        return list(range(first, self._seq + 1)), [datetime.now(timezone.utc)] * len(messages)

    def answer(self, index: int) -> None:
        """Let request ``index`` (in start order) succeed."""
        self._answers[index].set_result(None)

    async def started(self, count: int) -> bool:
        """Give the lane `TURNS` loop turns to have started ``count`` requests."""
        for _ in range(TURNS):
            if len(self.batches) >= count:
                break
            await asyncio.sleep(0)
        return len(self.batches) >= count


@pytest.fixture
async def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop the running loop's clock: timers (a linger) never come due."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    monkeypatch.setattr(loop, "time", lambda: now)


@pytest.fixture
def send() -> RecordingSend:
    """The recording send route."""
    return RecordingSend()


@pytest.fixture
async def make_publisher(send: RecordingSend) -> AsyncIterator[Any]:
    """``make_publisher(**config)``: a one-lane publisher over `send`, closed afterwards."""
    publishers: list[Publisher] = []

    def make(**config: Any) -> Publisher:
        publisher = Publisher(cast(API, send), "s", PublisherConfig(max_in_flight=1, **config))
        publishers.append(publisher)
        return publisher

    yield make
    for publisher in publishers:
        await publisher.close(timeout=0)


async def publish(publisher: Publisher, send: RecordingSend, events: list[Event]) -> None:
    """Publish ``events`` one call each, counting the calls that returned."""
    for event in events:
        await publisher.publish(event)
        send.published += 1


@pytest.mark.usefixtures("frozen_clock")
async def test_a_long_publish_call_lets_the_lane_send_while_it_encodes(
    make_publisher: Any, send: RecordingSend
) -> None:
    publisher = make_publisher(max_bytes=64 * 1024)
    events = [Event("x" * 8000) for _ in range(100)]  # a dozen requests' worth
    await publisher.publish(events)  # one call, all its events queued at once
    send.published += 1
    assert await send.started(1)
    assert send.batches[0][0] == 0  # the first request went out before the call returned
    assert 5 <= len(send.batches[0][1]) <= 9  # about max_bytes of the events
    for index in range(100):
        send.answer(index)
        if sum(len(ids) for _, ids in send.batches) == 100:
            break
        assert await send.started(index + 2)
    acks = [await event.wait_for_ack(timeout=5) for event in events]
    assert [ack.seq for ack in acks] == list(range(1, 101))


@pytest.mark.usefixtures("frozen_clock")
async def test_a_long_publish_call_of_small_events_lets_the_lane_send_after_a_few(
    make_publisher: Any, send: RecordingSend
) -> None:
    publisher = make_publisher()
    events = [Event(str(i)) for i in range(3 * YIELD_EVENTS)]  # far from any bound
    await publisher.publish(events)
    send.published += 1
    # The loop ran after the first YIELD_EVENTS: the lane sent them during the call.
    assert send.batches == [(0, [event.id for event in events[:YIELD_EVENTS]])]
    send.answer(0)
    assert await send.started(2)
    assert send.batches[1] == (1, [event.id for event in events[YIELD_EVENTS:]])
    send.answer(1)
    acks = [await event.wait_for_ack(timeout=5) for event in events]
    assert [ack.seq for ack in acks] == list(range(1, 3 * YIELD_EVENTS + 1))


def test_the_default_config_has_no_linger() -> None:
    assert PublisherConfig().linger == 0


@pytest.mark.usefixtures("frozen_clock")
async def test_a_lane_with_nothing_in_flight_sends_at_once(
    make_publisher: Any, send: RecordingSend
) -> None:
    publisher = make_publisher()
    first = Event("first")
    await publish(publisher, send, [first])
    assert await send.started(1)
    assert send.batches == [(1, [first.id])]
    send.answer(0)
    assert (await first.wait_for_ack(timeout=5)).seq == 1


@pytest.mark.usefixtures("frozen_clock")
async def test_what_arrives_while_a_batch_is_in_flight_is_the_next_batch(
    make_publisher: Any, send: RecordingSend
) -> None:
    publisher = make_publisher(max_batch=4)
    events = [Event(f"e{i}") for i in range(7)]
    await publish(publisher, send, events[:1])
    assert await send.started(1)
    await publish(publisher, send, events[1:])
    assert not await send.started(2)  # one batch in flight per lane: the rest waits
    send.answer(0)
    assert await send.started(2)
    assert send.batches[1] == (7, [e.id for e in events[1:5]])  # up to max_batch
    send.answer(1)
    assert await send.started(3)
    assert send.batches[2] == (7, [e.id for e in events[5:]])
    send.answer(2)
    acks = [await event.wait_for_ack(timeout=5) for event in events]
    assert [ack.seq for ack in acks] == list(range(1, 8))


@pytest.mark.usefixtures("frozen_clock")
async def test_an_explicit_linger_still_holds_a_lone_event_back(
    make_publisher: Any, send: RecordingSend
) -> None:
    publisher = make_publisher(linger=60.0)
    event = Event("lingering")
    await publish(publisher, send, [event])
    assert not await send.started(1)
    flushed = asyncio.ensure_future(publisher.flush())
    assert await send.started(1)
    send.answer(0)
    await asyncio.wait_for(flushed, 5)
    assert event.acked


async def test_against_the_server_a_burst_during_a_request_is_the_next_request(
    streamkit_server: ServerHandle,
) -> None:
    config = PublisherConfig(max_in_flight=1)  # the defaults otherwise: no linger
    async with streamkit.connect(streamkit_server.url, publisher=config, timeout=5.0) as client:
        await client.create_stream("s")
        api = client.api
        real_send = api.send_for_seqs
        sizes: list[int] = []
        started = asyncio.Event()
        gate = asyncio.Event()

        async def held_send(
            stream: str, messages: Sequence[str], *, blobs: Sequence[bytes] = (), retry: bool = True
        ) -> tuple[list[int], list[datetime]]:
            sizes.append(len(messages))
            started.set()
            await asyncio.wait_for(gate.wait(), 10)  # the first request stays in flight
            return await real_send(stream, messages, blobs=blobs, retry=retry)

        api.send_for_seqs = held_send  # type: ignore[method-assign]
        first = Event("first")
        await client.publish("s", first)
        await asyncio.wait_for(started.wait(), 10)
        burst = [Event(f"burst {i}") for i in range(50)]
        await client.publish("s", burst)
        gate.set()
        await client.flush(timeout=10)
        assert sizes == [1, 50]
        stored = await read_all(client, "s")
        assert [e.id for e in stored] == [first.id] + [e.id for e in burst]
        assert [(await e.wait_for_ack(timeout=5)).seq for e in [first, *burst]] == list(
            range(1, 52)
        )
