"""Delivery: receive, ack, nack, extend, redelivery, dead letters, ordering, competition."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.http_api import Api, msgs

from .helpers import eventually, expect_engine_gap, keys


async def _setup(api: Api, **consumer: Any) -> None:
    await api.stream("orders")
    await api.consumer(**consumer)


async def test_receive_shape_and_ack(api: Api) -> None:
    await _setup(api)
    stream = await api.ok("GET", "/api/streams/orders")
    await api.publish("orders", [{"key": "orders.eu.7", "data": '{"total":12.5}', "id": "e7"}])
    (item,) = await api.receive()
    assert set(item) == {"ack_id", "message", "delivery_count"}
    assert isinstance(item["ack_id"], str) and item["ack_id"]
    assert item["delivery_count"] == 1
    message = item["message"]
    assert message["key"] == "orders.eu.7" and message["stream_id"] == stream["id"]
    assert message["data"] == '{"total":12.5}' and message["seq"] == 1 and message["id"] == "e7"
    for field in ("data_hash", "inserted_at", "updated_at"):
        assert message[field]
    assert message == (await api.read())[0]
    assert await api.receive() == []  # in flight: not handed out again
    await api.ack([item["ack_id"]])
    assert await api.stats() == {"pending": 0, "in_flight": 0, "dead": 0, "skipped": 0}
    await api.ack([item["ack_id"]])  # acking twice is harmless


async def test_receive_via_post_body_and_batch_size(api: Api) -> None:
    await _setup(api)
    await api.publish("orders", msgs(*[f"k.{i}" for i in range(25)]))
    body = await api.ok("POST", "/api/streams/orders/consumers/billing/receive", {"batch_size": 2})
    assert [d["message"]["seq"] for d in body["data"]] == [1, 2]
    got = await api.receive()  # default 10
    assert [d["message"]["seq"] for d in got] == list(range(3, 13))
    got = await api.receive(batch_size=1000)
    assert [d["message"]["seq"] for d in got] == list(range(13, 26))


async def test_receive_bad_params_are_400(api: Api) -> None:
    await _setup(api)
    for params in [{"batch_size": "0"}, {"batch_size": "1001"}, {"wait_for": "-1"}]:
        status, _ = await api.call(
            "GET", "/api/streams/orders/consumers/billing/receive", params=params
        )
        assert status == 400, params


async def test_long_poll_returns_early_on_publish(api: Api) -> None:
    await _setup(api)

    async def later() -> None:
        await asyncio.sleep(0.3)
        await api.publish("orders", msgs("a", "b"))

    publisher = asyncio.create_task(later())
    started = time.monotonic()
    got = await api.receive(wait_for=5000)
    elapsed = time.monotonic() - started
    await publisher
    assert keys(got)[:1] == ["a"]
    assert elapsed < 4
    rest = await api.receive()
    assert keys(got) + keys(rest) == ["a", "b"]


async def test_long_poll_times_out_empty(api: Api) -> None:
    await _setup(api)
    started = time.monotonic()
    assert await api.receive(wait_for=300) == []
    assert time.monotonic() - started >= 0.25


async def test_redelivery_after_ack_wait(api: Api) -> None:
    await _setup(api, ack_wait_ms=300)
    await api.publish("orders", msgs("a"))
    (first,) = await api.receive()
    assert await api.receive() == []
    (second,) = await api.receive(wait_for=3000)
    assert second["message"]["seq"] == first["message"]["seq"]
    assert second["delivery_count"] == 2
    assert second["ack_id"] != first["ack_id"]
    await api.ack([second["ack_id"]])
    assert await api.receive(wait_for=500) == []


async def test_nack_redelivers_immediately(api: Api) -> None:
    await _setup(api)
    await api.publish("orders", msgs("a", "b"))
    first = await api.receive(batch_size=1)
    await api.nack([first[0]["ack_id"]])
    again = await api.receive()
    assert keys(again) == ["a", "b"]  # redeliveries come first
    assert again[0]["delivery_count"] == 2


async def test_nack_with_delay(api: Api) -> None:
    await _setup(api)
    await api.publish("orders", msgs("a"))
    (item,) = await api.receive()
    await api.nack([item["ack_id"]], delay_ms=600)
    assert await api.receive() == []
    started = time.monotonic()
    (again,) = await api.receive(wait_for=5000)
    assert again["delivery_count"] == 2
    assert time.monotonic() - started < 4


async def test_nack_wakes_a_waiting_receiver(api: Api) -> None:
    await _setup(api)
    await api.publish("orders", msgs("a"))
    (item,) = await api.receive()
    waiter = asyncio.create_task(api.receive(wait_for=5000))
    await asyncio.sleep(0.2)
    await api.nack([item["ack_id"]])
    got = await asyncio.wait_for(waiter, 4)
    assert keys(got) == ["a"]


async def test_malformed_ack_ids_are_ignored(api: Api) -> None:
    await _setup(api)
    await api.publish("orders", msgs("a"))
    (item,) = await api.receive()
    junk = ["garbage", "1.x", "", "9.zz", "JEpTLkFDSy5mb28uYmFyLjEuMS4xLjEuMA", "=" * 10]
    await api.ack(junk)
    await api.nack(junk)
    await api.settle("extend", junk)
    assert (await api.stats())["in_flight"] == 1
    await api.ack([item["ack_id"]])
    assert (await api.stats())["in_flight"] == 0


async def test_ack_ids_of_another_consumer_are_ignored(api: Api) -> None:
    await _setup(api)
    await api.consumer(name="other")
    await api.publish("orders", msgs("a"))
    (mine,) = await api.receive()
    (theirs,) = await api.receive(consumer="other")
    await api.ack([theirs["ack_id"]])  # sent to the wrong consumer
    assert (await api.stats())["in_flight"] == 1
    assert (await api.stats(consumer="other"))["in_flight"] == 1
    await api.ack([mine["ack_id"]])
    assert (await api.stats())["in_flight"] == 0


async def test_stale_ack_ids_are_ignored(api: Api, request: pytest.FixtureRequest) -> None:
    expect_engine_gap(
        request,
        api,
        "jetstream",
        "JetStream settles by stream sequence: an ack id of an earlier delivery of the same "
        "message still acks (or naks) the current delivery",
    )
    await _setup(api)
    await api.publish("orders", msgs("a"))
    (first,) = await api.receive()
    await api.nack([first["ack_id"]])
    (second,) = await api.receive()
    await api.ack([first["ack_id"]])
    await api.nack([first["ack_id"]])
    assert (await api.stats())["in_flight"] == 1
    assert await api.receive() == []
    await api.ack([second["ack_id"]])


async def test_extend_resets_deadline(api: Api) -> None:
    await _setup(api, ack_wait_ms=400)
    await api.publish("orders", msgs("a"))
    (item,) = await api.receive()
    for _ in range(4):
        await asyncio.sleep(0.2)
        await api.settle("extend", [item["ack_id"]])
    # 800 ms after delivery, still in flight thanks to the extensions
    assert await api.receive() == []
    await api.ack([item["ack_id"]])
    assert await api.stats() == {"pending": 0, "in_flight": 0, "dead": 0, "skipped": 0}


async def test_max_deliver_dead_letters(api: Api) -> None:
    await _setup(api, ack_wait_ms=200, max_deliver=2)
    await api.publish("orders", msgs("a", "b"))
    first = await api.receive()
    assert keys(first) == ["a", "b"]
    await api.ack([first[1]["ack_id"]])
    (second,) = await api.receive(wait_for=3000)
    assert second["delivery_count"] == 2
    await asyncio.sleep(0.3)  # the last ack deadline passes
    assert await api.receive(wait_for=300) == []  # never delivered a third time
    stats = await eventually(api.stats, lambda s: s["dead"] == 1)
    assert stats == {"pending": 0, "in_flight": 0, "dead": 1, "skipped": 0}
    dead = await api.ok("GET", "/api/streams/orders/consumers/billing/dead")
    assert [m["key"] for m in dead["data"]] == ["a"]
    assert dead["data"][0].pop("delivery_count") == 2
    assert dead["data"][0] == (await api.read())[0]


async def test_nack_past_max_deliver_dead_letters(api: Api) -> None:
    await _setup(api, max_deliver=1)
    await api.publish("orders", msgs("a", "b"))
    got = await api.receive()
    await api.nack([d["ack_id"] for d in got])
    assert await api.receive(wait_for=200) == []
    stats = await eventually(api.stats, lambda s: s["dead"] == 2)
    assert stats == {"pending": 0, "in_flight": 0, "dead": 2, "skipped": 0}
    dead = await api.ok("GET", "/api/streams/orders/consumers/billing/dead", params={"limit": 1})
    assert [m["seq"] for m in dead["data"]] == [1]


async def test_dead_letters_are_per_consumer(api: Api) -> None:
    await _setup(api, max_deliver=1)
    await api.consumer(name="other", max_deliver=1)
    await api.publish("orders", msgs("a"))
    (item,) = await api.receive()
    await api.nack([item["ack_id"]])
    await eventually(api.stats, lambda s: s["dead"] == 1)
    assert (await api.stats(consumer="other"))["dead"] == 0
    await api.ok("DELETE", "/api/streams/orders/consumers/billing")
    await api.consumer(max_deliver=1)  # a new consumer of the same name starts clean
    assert (await api.stats())["dead"] == 0
    dead = await api.ok("GET", "/api/streams/orders/consumers/billing/dead")
    assert dead["data"] == []


async def test_max_ack_pending(api: Api) -> None:
    await _setup(api, max_ack_pending=2)
    await api.publish("orders", msgs("a", "b", "c", "d"))
    got = await api.receive()
    assert keys(got) == ["a", "b"]
    assert await api.receive() == []
    await api.ack([got[0]["ack_id"]])
    assert keys(await api.receive()) == ["c"]
    waiter = asyncio.create_task(api.receive(wait_for=5000))
    await asyncio.sleep(0.2)
    await api.ack([got[1]["ack_id"]])
    assert keys(await asyncio.wait_for(waiter, 4)) == ["d"]


async def test_ordering(api: Api) -> None:
    await _setup(api)
    for i in range(5):
        await api.publish("orders", msgs(*[f"k.{i}.{j}" for j in range(20)]))
    seqs: list[int] = []
    for _ in range(20):
        got = await api.receive(batch_size=7)
        if not got:
            break
        seqs.extend(d["message"]["seq"] for d in got)
        await api.ack([d["ack_id"] for d in got])
    assert seqs == list(range(1, 101))


async def test_competing_receivers_never_share_a_message(api: Api) -> None:
    await _setup(api)
    total = 300
    for start in range(0, total, 100):
        await api.publish("orders", msgs(*[f"k.{i}" for i in range(start, start + 100)]))
    seen: list[int] = []

    async def worker() -> None:
        idle = 0
        while idle < 2:
            got = await api.receive(batch_size=13, wait_for=100)
            if not got:
                idle += 1
                continue
            idle = 0
            seen.extend(d["message"]["seq"] for d in got)
            await api.ack([d["ack_id"] for d in got])

    await asyncio.gather(*(worker() for _ in range(8)))
    assert sorted(seen) == list(range(1, total + 1))
    assert await api.stats() == {"pending": 0, "in_flight": 0, "dead": 0, "skipped": 0}


async def test_concurrent_long_polls_split_a_publish(api: Api) -> None:
    await _setup(api)
    waiters = [asyncio.create_task(api.receive(batch_size=1, wait_for=5000)) for _ in range(3)]
    await asyncio.sleep(0.3)
    await api.publish("orders", msgs("a", "b", "c"))
    results = await asyncio.wait_for(asyncio.gather(*waiters), 6)
    assert sorted(k for r in results for k in keys(r)) == ["a", "b", "c"]


async def test_deleting_consumer_ends_its_long_poll(api: Api) -> None:
    await _setup(api)
    waiter = asyncio.create_task(
        api.call(
            "GET", "/api/streams/orders/consumers/billing/receive", params={"wait_for": 10_000}
        )
    )
    await asyncio.sleep(0.2)
    await api.ok("DELETE", "/api/streams/orders/consumers/billing")
    status, body = await asyncio.wait_for(waiter, 5)
    assert status == 404
    assert body["code"] == "not_found"


async def test_ack_validation(api: Api) -> None:
    await _setup(api)
    path = "/api/streams/orders/consumers/billing"
    for verb, body in [
        ("ack", {}),
        ("ack", {"ack_ids": "x"}),
        ("ack", {"ack_ids": [1]}),
        ("nack", {"ack_ids": [], "delay_ms": -1}),
        ("extend", {"ack_ids": None}),
    ]:
        status, _ = await api.call("POST", f"{path}/{verb}", body)
        assert status == 422, (verb, body)
