"""Delivery semantics: receive, ack, nack, extend, redelivery, dead letters, competition."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from streamkit.server.store.base import ConsumerSpec, ConsumerStats, StreamOptions
from streamkit.testing import ServerHandle
from tests.http_api import Api, msgs


async def _setup(api: Api, **consumer: Any) -> None:
    await api.stream("orders")
    await api.consumer(**consumer)


async def _stats(api: Api, consumer: str = "billing") -> dict[str, int]:
    body = await api.ok("GET", f"/api/streams/orders/consumers/{consumer}")
    stats: dict[str, int] = body["stats"]
    return stats


async def test_receive_via_post_body(api: Api) -> None:
    await _setup(api)
    await api.publish("orders", msgs("a", "b", "c"))
    body = await api.ok("POST", "/api/streams/orders/consumers/billing/receive", {"batch_size": 2})
    assert [d["message"]["key"] for d in body["data"]] == ["a", "b"]
    body = await api.ok("POST", "/api/streams/orders/consumers/billing/receive")
    assert [d["message"]["key"] for d in body["data"]] == ["c"]


async def test_receive_batch_size(api: Api) -> None:
    await _setup(api)
    await api.publish("orders", msgs(*[f"k.{i}" for i in range(25)]))
    got = await api.receive()  # default 10
    assert [d["message"]["seq"] for d in got] == list(range(1, 11))
    got = await api.receive(batch_size=1000)
    assert [d["message"]["seq"] for d in got] == list(range(11, 26))


async def test_receive_bad_params_are_400(api: Api) -> None:
    await _setup(api)
    path = "/api/streams/orders/consumers/billing/receive"
    for params in [
        {"batch_size": "0"},
        {"batch_size": "1001"},
        {"batch_size": "x"},
        {"wait_for": "-1"},
    ]:
        status, err = await api.call("GET", path, params=params)
        assert status == 400, params
        (name,) = params
        assert err["param"] == name and f"`{name}`" in err["summary"]
    status, err = await api.call("POST", path, {"batch_size": "ten"})
    assert (status, err["param"]) == (400, "batch_size")


async def test_wait_for_is_capped_not_rejected(api: Api) -> None:
    await _setup(api)
    await api.publish("orders", msgs("a"))
    got = await api.receive(wait_for=10**9)
    assert len(got) == 1


async def test_long_poll_returns_early_on_publish(api: Api) -> None:
    await _setup(api, pattern="wanted.>")

    async def later() -> None:
        await asyncio.sleep(0.1)
        await api.publish("orders", msgs("other.1"))
        await asyncio.sleep(0.1)
        await api.publish("orders", msgs("wanted.1"))

    loop = asyncio.get_running_loop()
    task = asyncio.create_task(later())
    started = loop.time()
    got = await api.receive(wait_for=10_000)
    elapsed = loop.time() - started
    await task
    assert [d["message"]["key"] for d in got] == ["wanted.1"]
    assert 0.15 < elapsed < 5


async def test_long_poll_times_out_empty(api: Api) -> None:
    await _setup(api)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await api.receive(wait_for=150) == []
    assert loop.time() - started >= 0.14


async def test_redelivery_after_ack_wait(api: Api) -> None:
    await _setup(api, ack_wait_ms=200)
    await api.publish("orders", msgs("a"))
    (first,) = await api.receive()
    assert await api.receive() == []
    # a long-poll wakes up for the expired deadline, no publish needed
    (second,) = await api.receive(wait_for=5000)
    assert second["message"]["seq"] == first["message"]["seq"]
    assert second["delivery_count"] == 2
    assert second["ack_id"] != first["ack_id"]
    # the stale ack id must not ack the new delivery
    await api.ack([first["ack_id"]])
    assert (await _stats(api))["in_flight"] == 1
    await api.ack([second["ack_id"]])
    assert await _stats(api) == {"pending": 0, "in_flight": 0, "dead": 0, "skipped": 0}


async def test_nack_redelivers_immediately(api: Api) -> None:
    await _setup(api)
    await api.publish("orders", msgs("a", "b"))
    first = await api.receive()
    await api.nack([first[1]["ack_id"]])
    again = await api.receive()
    assert [(d["message"]["key"], d["delivery_count"]) for d in again] == [("b", 2)]
    await api.ack([first[0]["ack_id"], again[0]["ack_id"]])
    assert await _stats(api) == {"pending": 0, "in_flight": 0, "dead": 0, "skipped": 0}


async def test_nack_with_delay(api: Api) -> None:
    await _setup(api)
    await api.publish("orders", msgs("a"))
    (first,) = await api.receive()
    await api.nack([first["ack_id"]], delay_ms=300)
    assert await api.receive() == []
    loop = asyncio.get_running_loop()
    started = loop.time()
    (again,) = await api.receive(wait_for=5000)
    assert loop.time() - started >= 0.2
    assert again["delivery_count"] == 2


async def test_nack_wakes_a_waiting_receiver(api: Api) -> None:
    await _setup(api)
    await api.publish("orders", msgs("a"))
    (first,) = await api.receive()
    waiter = asyncio.create_task(api.receive(wait_for=10_000))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await api.nack([first["ack_id"]])
    got = await asyncio.wait_for(waiter, 5)
    assert got[0]["delivery_count"] == 2


async def test_stale_ack_ids_are_ignored(api: Api) -> None:
    await _setup(api)
    await api.publish("orders", msgs("a"))
    (first,) = await api.receive()
    await api.nack([first["ack_id"]])
    (second,) = await api.receive()
    await api.ack([first["ack_id"], "garbage", "1.x", "", "9.zz"])
    await api.nack([first["ack_id"]])
    assert (await _stats(api))["in_flight"] == 1
    assert await api.receive() == []
    await api.ack([second["ack_id"]])


async def test_extend_resets_deadline(api: Api) -> None:
    await _setup(api, ack_wait_ms=300)
    await api.publish("orders", msgs("a"))
    (item,) = await api.receive()
    for _ in range(3):
        await asyncio.sleep(0.15)
        assert await api.ok(
            "POST",
            "/api/streams/orders/consumers/billing/extend",
            {"ack_ids": [item["ack_id"]]},
        ) == {"success": True}
    # 450 ms after delivery, still in flight thanks to the extensions
    assert await api.receive() == []
    await api.ack([item["ack_id"]])
    assert await _stats(api) == {"pending": 0, "in_flight": 0, "dead": 0, "skipped": 0}


async def test_max_deliver_dead_letters(api: Api) -> None:
    await _setup(api, ack_wait_ms=100, max_deliver=2)
    await api.publish("orders", msgs("poison", "fine"))
    got = await api.receive()
    await api.ack([got[1]["ack_id"]])
    await api.nack([got[0]["ack_id"]])  # delivery 1 of 2
    (again,) = await api.receive()
    assert again["delivery_count"] == 2
    # second attempt times out instead: now it is dead
    assert await api.receive(wait_for=300) == []
    assert await _stats(api) == {"pending": 0, "in_flight": 0, "dead": 1, "skipped": 0}
    dead = (await api.ok("GET", "/api/streams/orders/consumers/billing/dead"))["data"]
    assert [m["key"] for m in dead] == ["poison"]
    assert dead[0]["seq"] == 1
    # never delivered again, never acked by the old id
    await api.ack([again["ack_id"]])
    assert (await _stats(api))["dead"] == 1
    assert await api.receive(wait_for=200) == []


async def test_nack_past_max_deliver_is_dead_at_once(api: Api) -> None:
    await _setup(api, max_deliver=1)
    await api.publish("orders", msgs("a"))
    (item,) = await api.receive()
    await api.nack([item["ack_id"]])
    assert await _stats(api) == {"pending": 0, "in_flight": 0, "dead": 1, "skipped": 0}
    status, body = await api.call(
        "GET", "/api/streams/orders/consumers/billing/dead", params={"limit": 0}
    )
    assert (status, body["param"]) == (400, "limit")
    dead = await api.ok("GET", "/api/streams/orders/consumers/billing/dead", params={"limit": 1})
    assert len(dead["data"]) == 1


async def test_max_ack_pending(api: Api) -> None:
    await _setup(api, max_ack_pending=3)
    await api.publish("orders", msgs(*[f"k{i}" for i in range(5)]))
    first = await api.receive(batch_size=10)
    assert len(first) == 3
    assert await api.receive() == []
    waiter = asyncio.create_task(api.receive(wait_for=10_000))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await api.ack([first[0]["ack_id"]])  # frees one slot and wakes the waiter
    got = await asyncio.wait_for(waiter, 5)
    assert [d["message"]["key"] for d in got] == ["k3"]
    # redeliveries are allowed at the cap
    await api.nack([first[1]["ack_id"]])
    again = await api.receive()
    assert [d["message"]["key"] for d in again] == ["k1"]


async def test_competing_receivers_never_share_a_message(api: Api) -> None:
    await _setup(api)
    total = 2000
    for start in range(0, total, 1000):
        await api.publish(
            "orders", [{"key": "k", "data": str(i)} for i in range(start, start + 1000)]
        )
    seen: list[int] = []

    async def worker() -> None:
        for _ in range(200):  # bounded
            got = await api.receive(batch_size=37)
            if not got:
                return
            seen.extend(d["message"]["seq"] for d in got)
            await api.ack([d["ack_id"] for d in got])

    await asyncio.gather(*(worker() for _ in range(8)))
    assert sorted(seen) == list(range(1, total + 1))
    assert len(seen) == len(set(seen))


async def test_concurrent_long_polls_split_a_publish(api: Api) -> None:
    await _setup(api)
    waiters = [asyncio.create_task(api.receive(batch_size=5, wait_for=5000)) for _ in range(4)]
    await asyncio.sleep(0.1)
    await api.publish("orders", msgs(*[f"k{i}" for i in range(20)]))
    results = await asyncio.wait_for(asyncio.gather(*waiters), 10)
    seqs = [d["message"]["seq"] for r in results for d in r]
    assert sorted(seqs) == list(range(1, 21))


async def test_ack_validation(api: Api) -> None:
    await _setup(api)
    base = "/api/streams/orders/consumers/billing"
    for route in ("ack", "nack", "extend"):
        for body in [{}, {"ack_ids": "x"}, {"ack_ids": [1]}, {"ack_ids": None}]:
            status, err = await api.call("POST", f"{base}/{route}", body)
            assert status == 422, (route, body)
            assert "ack_ids" in err["validation_errors"]
    for delay in (-1, "5", 1.5):
        status, err = await api.call("POST", f"{base}/nack", {"ack_ids": [], "delay_ms": delay})
        assert status == 422
        assert "delay_ms" in err["validation_errors"]
    assert await api.ok("POST", f"{base}/ack", {"ack_ids": []}) == {"success": True}


async def test_abandoned_long_poll_gives_messages_back_uncounted(
    api: Api, streamkit_server: ServerHandle
) -> None:
    """A client that hangs up mid long-poll spends no delivery attempt of what arrives."""
    await _setup(api, max_deliver=1)
    poll = asyncio.create_task(
        api.session.post(
            f"{streamkit_server.url}/api/streams/orders/consumers/billing/receive",
            params={"wait_for": "5000"},
        )
    )
    await asyncio.sleep(0.2)  # the server is now waiting inside the store
    poll.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await poll
    await asyncio.sleep(0.1)
    await api.publish("orders", msgs("orders.1", "orders.2", "orders.3"))
    for _ in range(100):  # bounded: until the abandoned poll has handed them back
        stats = await _stats(api)
        if stats["in_flight"] == 0:
            break
        await asyncio.sleep(0.05)
    items = await api.receive(batch_size=10)
    assert [i["delivery_count"] for i in items] == [1, 1, 1]
    assert (await _stats(api))["dead"] == 0


async def test_store_release_does_not_count_the_attempt(streamkit_server: ServerHandle) -> None:
    store = streamkit_server.store
    await store.create_stream("orders", StreamOptions())
    spec = ConsumerSpec(name="c", filter_key_pattern=">", max_deliver=2)
    await store.create_consumer("orders", spec)
    await store.publish("orders", [{"key": "orders.1", "data": "x"}])
    (first,) = await store.receive("orders", "c", 10)
    await store.release("orders", "c", [first["ack_id"]])
    (again,) = await store.receive("orders", "c", 10)
    assert again["delivery_count"] == 1
    await store.ack("orders", "c", [first["ack_id"]])  # the released delivery's id is stale
    assert (await store.get_consumer("orders", "c")).stats == ConsumerStats(0, 1, 0)
