"""Events of one key are stored in publish order, across lanes, batches and retries."""

from __future__ import annotations

import random
from collections import defaultdict

from aioresponses import CallbackResult

from .conftest import ClientFactory
from .fakes import FakeSendRoute, Message, Outcomes, error_response, make_events


def per_key(messages: list[Message]) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = defaultdict(list)
    for message in messages:
        ids[message["key"]].append(message["id"])
    return ids


async def test_per_key_order_survives_retries_and_lost_responses(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    rng = random.Random(7)

    def flaky(messages: list[Message]) -> CallbackResult | None:
        roll = rng.random()
        if roll < 0.2:
            return error_response(503, "busy", headers={"Retry-After": "0"})
        if roll < 0.3:
            return route.store_and_drop(messages)
        return None

    route.then(flaky, times=10_000)
    route.jitter = 0.003
    client = make_client(max_batch=25, max_in_flight=4)
    events = make_events(2000, keys=13)
    outcomes = Outcomes()
    for start in range(0, len(events), 100):  # many calls, as an application would make
        chunk = events[start : start + 100]
        await client.publish("s", chunk, on_ack=outcomes.on_ack, on_nack=outcomes.on_nack)
    await client.flush(timeout=20)

    outcomes.assert_each_settled_once(events)
    assert not outcomes.nacks
    assert len(set(route.stored_ids())) == len(route.stored) == 2000
    published = per_key([{"key": e.key, "id": e.id} for e in events])
    assert per_key(route.stored) == published
    seq_by_id = {a.id: a.seq for a in outcomes.acks}
    for ids in published.values():
        seqs = [seq_by_id[i] for i in ids]
        assert seqs == sorted(seqs)


async def test_keys_spread_over_lanes_so_batches_overlap(
    make_client: ClientFactory, route: FakeSendRoute
) -> None:
    client = make_client(max_batch=10, max_in_flight=4)
    in_flight, peak = 0, 0
    route.delay = 0.01

    def arrive(_: list[Message]) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)

    def leave(_: list[Message]) -> CallbackResult | None:
        nonlocal in_flight
        in_flight -= 1
        return None

    route.on_request = arrive
    route.then(leave, times=1000)
    await client.publish("s", make_events(200, keys=16))
    await client.flush(timeout=10)
    assert 1 < peak <= 4
