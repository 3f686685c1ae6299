"""What the publisher does when sending fails: retry, split, partially reject or nack.

Every test checks that each event ended in exactly one callback.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aioresponses import CallbackResult

from streamkit import AsyncClient, Event

from .conftest import ClientFactory
from .fakes import FakeSendRoute, Message, Outcomes, error_response, make_events, raw_response


async def publish_and_flush(client: AsyncClient, events: list[Event]) -> Outcomes:
    outcomes = Outcomes()
    await client.publish("s", events, on_ack=outcomes.on_ack, on_nack=outcomes.on_nack)
    await client.flush(timeout=10)
    outcomes.assert_each_settled_once(events)
    return outcomes


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "rejected"), (401, "unauthorized"), (404, "not_found"), (409, "rejected")],
)
async def test_a_4xx_rejects_the_whole_batch_without_retrying(
    client: AsyncClient, route: FakeSendRoute, status: int, code: str
) -> None:
    route.fail(status, summary="no way")
    events = make_events(5)
    outcomes = await publish_and_flush(client, events)
    assert not outcomes.acks
    assert {n.code for n in outcomes.nacks} == {code}
    assert all("no way" in n.error for n in outcomes.nacks)
    assert len(route.requests) == 1


async def test_a_422_naming_messages_nacks_them_and_republishes_the_rest(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    route.fail(
        422,
        summary="Validation failed",
        validation_errors={
            "messages[1].key": ["must not contain wildcards"],
            "messages[3].data": ["is too long", "is not text"],
        },
    )
    events = make_events(6)
    outcomes = await publish_and_flush(client, events)
    nacked = outcomes.nacked()
    assert set(nacked) == {events[1].id, events[3].id}
    assert nacked[events[1].id].code == "invalid"
    assert nacked[events[1].id].error == "key must not contain wildcards"
    assert nacked[events[3].id].error == "data is too long, is not text"
    kept = [events[i].id for i in (0, 2, 4, 5)]
    assert [m["id"] for m in route.requests[1]] == kept
    assert route.stored_ids() == kept


async def test_a_422_naming_no_message_nacks_the_batch(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    route.fail(422, summary="Validation failed", validation_errors={"messages": ["too many"]})
    outcomes = await publish_and_flush(client, make_events(3))
    assert [n.code for n in outcomes.nacks] == ["invalid"] * 3
    assert "too many" in outcomes.nacks[0].error


async def test_a_422_naming_an_index_outside_the_batch_nacks_the_batch(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    route.fail(422, validation_errors={"messages[7].key": ["is invalid"]})
    outcomes = await publish_and_flush(client, make_events(3))
    assert len(outcomes.nacks) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_retried_with_the_same_ids(
    client: AsyncClient, route: FakeSendRoute, status: int
) -> None:
    route.fail(status, times=2)
    events = make_events(4)
    outcomes = await publish_and_flush(client, events)
    assert len(outcomes.acks) == 4
    assert len(route.requests) == 3
    ids = [e.id for e in events]
    assert all([m["id"] for m in request] == ids for request in route.requests)


async def test_429_waits_for_retry_after(make_client: ClientFactory, route: FakeSendRoute) -> None:
    client = make_client(max_backoff=1.0)
    route.fail(429, summary="slow down", headers={"Retry-After": "0.2"})
    sent_at: list[float] = []
    route.on_request = lambda _: sent_at.append(asyncio.get_running_loop().time())
    outcomes = await publish_and_flush(client, make_events(2))
    assert len(outcomes.acks) == 2
    assert sent_at[1] - sent_at[0] >= 0.19


@pytest.mark.parametrize(
    "failure",
    [asyncio.TimeoutError(), aiohttp.ServerDisconnectedError(), aiohttp.ClientConnectionError()],
)
async def test_network_failures_and_timeouts_are_retried(
    client: AsyncClient, route: FakeSendRoute, failure: BaseException
) -> None:
    route.raise_(failure, times=3)
    outcomes = await publish_and_flush(client, make_events(3))
    assert len(outcomes.acks) == 3
    assert len(route.requests) == 4


async def test_a_lost_response_is_retried_and_not_stored_twice(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    route.store_then_drop()
    events = make_events(10)
    outcomes = await publish_and_flush(client, events)
    assert route.stored_ids() == [e.id for e in events]
    assert sorted(a.seq for a in outcomes.acks) == list(range(1, 11))


async def test_transient_failures_past_the_deadline_nack_unavailable(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(retry_deadline=0.1)
    route.fail(503, times=10_000)
    outcomes = await publish_and_flush(client, make_events(3))
    assert [n.code for n in outcomes.nacks] == ["unavailable"] * 3
    assert "gave up after" in outcomes.nacks[0].error
    assert "503" in outcomes.nacks[0].error


async def test_a_too_large_batch_is_split_until_it_fits(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    def too_large_over_three(messages: list[Message]) -> CallbackResult | None:
        return error_response(413, "Payload too large") if len(messages) > 3 else None

    route.then(too_large_over_three, times=100)
    events = make_events(10)
    outcomes = await publish_and_flush(client, events)
    assert len(outcomes.acks) == 10
    assert route.stored_ids() == [e.id for e in events]  # order kept across the splits


async def test_a_single_event_too_large_is_nacked(
    client: AsyncClient, route: FakeSendRoute
) -> None:
    route.fail(413, summary="Payload too large")
    outcomes = await publish_and_flush(client, make_events(1))
    assert outcomes.nacks[0].code == "too_large"


@pytest.mark.parametrize(
    "body",
    [b"<html>not json</html>", b'{"data": {"published": 2}}', b'{"data": {"acks": [{}, {}]}}'],
)
async def test_a_malformed_response_nacks_bad_response(
    client: AsyncClient, route: FakeSendRoute, body: bytes
) -> None:
    route.then(lambda _: raw_response(body))
    outcomes = await publish_and_flush(client, make_events(2))
    assert [n.code for n in outcomes.nacks] == ["bad_response"] * 2


async def test_events_of_several_batches_settle_once_under_mixed_failures(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(max_batch=7, max_in_flight=3)
    route.fail(503)
    route.store_then_drop()
    route.fail(422, validation_errors={"messages[0].key": ["is invalid"]})
    route.raise_(aiohttp.ClientConnectionError())
    events = make_events(100, keys=5)
    outcomes = await publish_and_flush(client, events)
    assert len(outcomes.nacks) == 1
    stored = route.stored_ids()
    assert len(set(stored)) == len(stored)  # nothing stored twice
    assert {a.id for a in outcomes.acks} <= set(stored)
