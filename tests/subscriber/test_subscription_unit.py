"""`Subscription` over a fake API: consumers, settling, closing, and the wire shapes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

import streamkit
from streamkit import errors
from streamkit.models import Event
from streamkit.subscriber import Subscription

from .fake_api import FakeAPI, delivery

pytestmark = pytest.mark.timeout(10)


def make(api: FakeAPI, streams: tuple[str, ...] = ("orders",), **options: Any) -> Subscription:
    options = {"wait_for": 0.05, "ack_interval": 0.001, **options}
    return Subscription(api, streams, **options)


async def test_without_consumer_an_ephemeral_consumer_is_made_per_stream_and_deleted() -> None:
    api = FakeAPI()
    closed: list[Subscription] = []
    sub = Subscription(
        api,
        ["a", "b"],
        filter="a.>",
        wait_for=0.05,
        inactive_threshold=12.5,
        on_close=closed.append,
    )
    async with sub:
        assert sub.ephemeral
        assert [(s, opts) for s, _, opts in api.created] == [
            (
                s,
                {
                    "filter_key_pattern": "a.>",
                    "start": "new",
                    "ephemeral": True,
                    "inactive_threshold_ms": 12500,
                },
            )
            for s in ("a", "b")
        ]
        assert sub.consumers == {s: name for s, name, _ in api.created}
    assert sorted(api.deleted) == sorted(sub.consumers.items())
    assert closed == [sub] and sub.closed


async def test_start_is_passed_to_ephemeral_consumers() -> None:
    api = FakeAPI()
    async with make(api, start=42):
        pass
    assert api.created[0][2]["start"] == 42 and api.created[0][2]["filter_key_pattern"] == ">"


@pytest.mark.parametrize("options", [{"filter": "a.>"}, {"start": "all"}])
def test_filter_and_start_are_for_ephemeral_consumers_only(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="create_consumer"):
        make(FakeAPI(), consumer="billing", **options)


@pytest.mark.parametrize(
    "options",
    [{"batch_size": 0}, {"batch_size": 1001}, {"prefetch": 0}, {"wait_for": -1}],
)
def test_bad_options_are_rejected(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make(FakeAPI(), **options)


def test_streams_must_be_distinct() -> None:
    with pytest.raises(ValueError):
        make(FakeAPI(), ("a", "a"))


async def test_a_durable_consumer_must_exist() -> None:
    api = FakeAPI(failures=[errors.NotFound(404, "No `consumer` found")])
    sub = make(api, consumer="billing")
    with pytest.raises(errors.NotFound):
        async for _ in sub:
            pass
    assert sub.closed
    with pytest.raises(errors.ClientClosed):
        await sub.start()


async def test_settling_twice_is_a_no_op_and_close_gives_back_the_rest() -> None:
    events = [delivery() for _ in range(4)]
    api = FakeAPI(batches={"orders": [events]})
    async with make(api, consumer="billing") as sub:
        received: list[Event] = []
        async for event in sub:
            received.append(event)
            if len(received) == 1:
                await event.ack()
                await event.ack()
                await event.nack()
                await event.extend()
            if len(received) == 2:
                await event.nack(delay=1.5)
                await event.ack()
            if len(received) == 3:
                break  # handed out, left unsettled
        assert sub.held == 2
    assert api.settled("ack") == [events[0].ack_id]
    nacks = sorted((tuple(c.ack_ids), c.delay) for c in api.calls if c.verb == "nack")
    assert nacks == [
        ((events[1].ack_id,), 1.5),
        ((events[2].ack_id, events[3].ack_id), None),
    ]
    assert api.settled("extend") == []
    assert sub.held == 0
    # Given back on close: settling later is a no-op too.
    await received[2].ack()
    await received[2].nack()
    assert api.settled("ack") == [events[0].ack_id]
    assert len(api.settled("nack")) == 3


async def test_extend_resets_the_deadline_at_once() -> None:
    event = delivery()
    api = FakeAPI(batches={"orders": [[event]]})
    async with make(api, consumer="billing") as sub:
        async for got in sub:
            await got.extend()
            break
    assert [c.verb for c in api.calls] == ["extend", "nack"]


async def test_events_not_from_a_subscription_cannot_be_acked() -> None:
    with pytest.raises(errors.StreamkitError, match="subscription"):
        await Event("x").ack()


async def test_break_closes_the_subscription_through_the_generator() -> None:
    api = FakeAPI(batches={"orders": [[delivery(), delivery()]]})
    sub = make(api, consumer="billing")
    async for _ in sub:
        break
    for _ in range(200):
        if sub.closed:
            break
        await asyncio.sleep(0.005)
    assert sub.closed
    assert len(api.settled("nack")) == 2


async def test_close_from_another_task_ends_the_loop() -> None:
    api = FakeAPI()
    sub = make(api, consumer="billing")
    await sub.start()

    async def consume() -> int:
        return len([e async for e in sub])

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.02)
    await sub.aclose()
    assert await asyncio.wait_for(task, 1.0) == 0


async def test_cancelling_the_consumer_task_gives_everything_back() -> None:
    events = [delivery() for _ in range(5)]
    api = FakeAPI(batches={"orders": [events]})
    sub = make(api, consumer="billing")
    first = asyncio.Event()

    async def consume() -> None:
        async with sub:
            async for event in sub:
                await event.ack()
                first.set()
                await asyncio.sleep(3600)

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sub.closed
    assert api.settled("ack") == [events[0].ack_id]
    assert sorted(api.settled("nack")) == sorted(e.ack_id or "" for e in events[1:])


async def test_leases_are_renewed_while_the_handler_works() -> None:
    api = FakeAPI(batches={"orders": [[delivery()]]}, ack_wait_ms=50)
    async with make(api, consumer="billing") as sub:
        async for event in sub:
            await asyncio.sleep(0.2)
            await event.ack()
            break
    extends = api.settled("extend")
    assert len(extends) >= 3
    assert [c.verb for c in api.calls][-1] == "ack"


# -- over HTTP (aioresponses) ------------------------------------------------------------

BASE = "http://streamkit.test"


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.fixture
async def client() -> AsyncIterator[streamkit.AsyncClient]:
    async with streamkit.connect(BASE, timeout=2.0) as c:
        yield c


def message(seq: int) -> dict[str, object]:
    return {
        "ack_id": f"{seq}.tok",
        "delivery_count": 2,
        "message": {
            "key": "orders.eu",
            "stream_id": "s1",
            "data": f'"{seq}"',
            "seq": seq,
            "headers": {"content-type": "application/json"},
        },
    }


async def long_poll(url: URL, **kwargs: object) -> CallbackResult:
    await asyncio.sleep(int(url.query["wait_for"]) / 1000)
    return CallbackResult(payload={"data": []})


def bodies(mocked: aioresponses, verb: str) -> list[object]:
    url = URL(f"{BASE}/api/streams/orders/consumers/billing/{verb}")
    return [orjson.loads(call.kwargs["data"]) for call in mocked.requests.get(("POST", url), [])]


async def test_the_wire_shapes(mocked: aioresponses, client: streamkit.AsyncClient) -> None:
    consumer = {
        "id": "c1",
        "name": "billing",
        "stream_id": "s1",
        "filter_key_pattern": ">",
        "kind": "pull",
        "ack_wait_ms": 30000,
        "max_ack_pending": 100,
        "max_deliver": None,
    }
    mocked.get(f"{BASE}/api/streams/orders/consumers/billing", payload=consumer)
    receive = re.compile(rf"^{re.escape(BASE)}/api/streams/orders/consumers/billing/receive\?.*")
    mocked.post(receive, payload={"data": [message(1), message(2), message(3)]})
    mocked.post(receive, callback=long_poll, repeat=True)
    for verb in ("ack", "nack"):
        mocked.post(
            f"{BASE}/api/streams/orders/consumers/billing/{verb}",
            payload={"success": True},
            repeat=True,
        )
    async with client.subscribe("orders", consumer="billing", wait_for=0.5, batch_size=3) as sub:
        async for event in sub:
            assert event.json() == str(event.seq)
            assert (event.delivery_count, event.stream) == (2, "orders")
            if event.seq == 1:
                await event.ack()
            elif event.seq == 2:
                await event.nack(delay=2)
            else:
                break
    assert bodies(mocked, "ack") == [{"ack_ids": ["1.tok"]}]
    assert sorted(bodies(mocked, "nack"), key=str) == sorted(
        [{"ack_ids": ["2.tok"], "delay_ms": 2000}, {"ack_ids": ["3.tok"]}], key=str
    )
    receives = [k for k in mocked.requests if k[1].path.endswith("/receive")]
    assert receives and all(k[1].query["wait_for"] == "500" for k in receives)
    assert all(k[1].query["batch_size"] == "3" for k in receives)
    # Asked for as columns; a server answering with Sequin's objects is understood too.
    assert all(k[1].query["deliveries"] == "columns" for k in receives)
    assert sub.closed and not client._subscriptions
