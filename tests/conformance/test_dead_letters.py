"""Dead letters users can act on: list with delivery counts, redrive, discard; consumer reset."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.http_api import Api, msgs

from .helpers import eventually, expect_engine_gap, keys

BASE = "/api/streams/orders/consumers/billing"


async def _dead(api: Api, **params: int) -> list[dict[str, Any]]:
    body = await api.ok("GET", BASE + "/dead", params=params)
    data: list[dict[str, Any]] = body["data"]
    return data


async def _kill(api: Api, *names: str) -> None:
    """Publish ``names`` to a consumer with max_deliver=1 and nack each once: all dead."""
    await api.stream("orders")
    await api.consumer(max_deliver=1)
    await api.publish("orders", msgs(*names))
    got = await api.receive(batch_size=len(names))
    assert keys(got) == list(names)
    await api.nack([d["ack_id"] for d in got])
    await eventually(api.stats, lambda s: s["dead"] == len(names))


async def test_dead_letters_carry_their_delivery_count_and_page_by_seq(api: Api) -> None:
    await _kill(api, "a", "b", "c")
    dead = await _dead(api)
    assert [m["seq"] for m in dead] == [1, 2, 3]
    assert [m["delivery_count"] for m in dead] == [1, 1, 1]
    assert "last_error" not in dead[0]  # neither engine records one
    assert [m["seq"] for m in await _dead(api, limit=2)] == [1, 2]
    assert [m["seq"] for m in await _dead(api, after_seq=2)] == [3]
    status, body = await api.call("GET", BASE + "/dead", params={"after_seq": -1})
    assert (status, body["param"]) == (400, "after_seq")


async def test_discard_some_then_all(api: Api) -> None:
    await _kill(api, "a", "b", "c")
    assert await api.ok("POST", BASE + "/dead/discard", {"seqs": [2, 99]}) == {"discarded": 1}
    assert [m["seq"] for m in await _dead(api)] == [1, 3]
    assert (await api.stats())["dead"] == 2
    assert await api.ok("POST", BASE + "/dead/discard", {"seqs": [2]}) == {"discarded": 0}
    assert await api.ok("POST", BASE + "/dead/discard") == {"discarded": 2}
    assert await _dead(api) == []
    assert await api.stats() == {"pending": 0, "in_flight": 0, "dead": 0, "skipped": 0}
    # discarded, not delivered again; the messages stay in the stream
    assert await api.receive(wait_for=200) == []
    assert keys(await api.read()) == ["a", "b", "c"]


async def test_redrive_delivers_dead_letters_again_with_a_fresh_count(
    request: pytest.FixtureRequest, api: Api
) -> None:
    expect_engine_gap(request, api, "jetstream", "JetStream never redelivers past max_deliver")
    await _kill(api, "a", "b", "c")
    assert await api.ok("POST", BASE + "/dead/redrive", {"seqs": [1, 3, 42]}) == {"redriven": 2}
    assert [m["seq"] for m in await _dead(api)] == [2]
    again = await api.receive(wait_for=3000)
    assert keys(again) == ["a", "c"]
    assert [d["delivery_count"] for d in again] == [1, 1]
    await api.ack([again[0]["ack_id"]])
    await api.nack([again[1]["ack_id"]])  # its one attempt again: dead again
    await eventually(api.stats, lambda s: s["dead"] == 2)
    assert await api.ok("POST", BASE + "/dead/redrive") == {"redriven": 2}
    assert keys(await api.receive(wait_for=3000)) == ["b", "c"]
    assert (await api.stats())["dead"] == 0


async def test_redrive_an_exhausted_delivery_not_yet_marked_dead(
    request: pytest.FixtureRequest, api: Api
) -> None:
    expect_engine_gap(request, api, "jetstream", "JetStream never redelivers past max_deliver")
    await api.stream("orders")
    await api.consumer(max_deliver=1, ack_wait_ms=100)
    await api.publish("orders", msgs("a"))
    assert keys(await api.receive()) == ["a"]
    await asyncio.sleep(0.2)  # its one ack deadline passes: dead, though no receive saw it
    assert [m["seq"] for m in await _dead(api)] == [1]
    assert await api.ok("POST", BASE + "/dead/redrive") == {"redriven": 1}
    assert keys(await api.receive(wait_for=3000)) == ["a"]


async def test_redrive_on_jetstream_says_why_not(api: Api) -> None:
    if api.engine != "jetstream":
        # Covered by the redrive tests above on every engine that can.
        await _kill(api, "a")
        assert await api.ok("POST", BASE + "/dead/redrive") == {"redriven": 1}
        return
    await _kill(api, "a")
    status, body = await api.call("POST", BASE + "/dead/redrive", {})
    assert (status, body["code"]) == (501, "unsupported")
    assert "max_deliver" in body["summary"]
    assert [m["seq"] for m in await _dead(api)] == [1]  # nothing lost


async def test_dead_letter_actions_check_their_input(api: Api) -> None:
    await _kill(api, "a")
    for verb in ("redrive", "discard"):
        for bad in (
            {"seqs": "all"},
            {"seqs": [0]},
            {"seqs": [1.5]},
            {"seqs": list(range(1, 1002))},
        ):
            status, body = await api.call("POST", f"{BASE}/dead/{verb}", bad)
            assert status == 422 and "seqs" in body["validation_errors"], (verb, bad)
        status, _ = await api.call("POST", f"/api/streams/orders/consumers/nobody/dead/{verb}", {})
        assert status == 404
    assert [m["seq"] for m in await _dead(api)] == [1]


async def test_reset_to_all_delivers_everything_again(api: Api) -> None:
    await api.stream("orders")
    await api.consumer()
    await api.publish("orders", msgs("a", "b", "c"))
    got = await api.receive()
    await api.ack([d["ack_id"] for d in got[:2]])  # c stays in flight
    consumer = await api.ok("POST", BASE + "/reset", {"start": "all"})
    assert consumer["name"] == "billing" and consumer["stats"]["in_flight"] == 0
    again = await api.receive(wait_for=3000)
    assert keys(again) == ["a", "b", "c"]
    assert [d["delivery_count"] for d in again] == [1, 1, 1]
    await api.ack([d["ack_id"] for d in again])
    assert await api.stats() == {"pending": 0, "in_flight": 0, "dead": 0, "skipped": 0}


async def test_ack_ids_from_before_a_reset_are_stale(
    request: pytest.FixtureRequest, api: Api
) -> None:
    expect_engine_gap(
        request, api, "jetstream", "the recreated consumer numbers its deliveries as before"
    )
    await api.stream("orders")
    await api.consumer()
    await api.publish("orders", msgs("a"))
    (old,) = await api.receive()
    await api.ok("POST", BASE + "/reset", {"start": "all"})
    assert keys(await api.receive(wait_for=3000)) == ["a"]
    await api.ack([old["ack_id"]])
    assert (await api.stats())["in_flight"] == 1


async def test_reset_to_a_seq_a_time_and_new(api: Api) -> None:
    await api.stream("orders")
    await api.consumer()
    await api.publish("orders", msgs("a", "b"))
    await asyncio.sleep(0.05)
    await api.publish("orders", msgs("c", "d"))
    c_at = (await api.read(after_seq=2, limit=1))[0]["inserted_at"]
    await api.ok("POST", BASE + "/reset", {"start": 2})
    assert keys(await api.receive(wait_for=3000)) == ["b", "c", "d"]
    await api.ok("POST", BASE + "/reset", {"start": c_at})
    assert keys(await api.receive(wait_for=3000)) == ["c", "d"]
    await api.ok("POST", BASE + "/reset", {"start": "new"})
    assert await api.receive(wait_for=200) == []
    await api.publish("orders", msgs("e"))
    assert keys(await api.receive(wait_for=3000)) == ["e"]


async def test_reset_forgets_dead_letters(api: Api) -> None:
    await _kill(api, "a", "b")
    consumer = await api.ok("POST", BASE + "/reset", {"start": "all"})
    assert consumer["max_deliver"] == 1  # the consumer's options are kept
    assert await _dead(api) == []
    assert keys(await api.receive(wait_for=3000)) == ["a", "b"]


async def test_reset_checks_its_input(api: Api) -> None:
    await api.stream("orders")
    await api.consumer()
    later = (datetime.now() + timedelta(days=1)).isoformat()  # no offset: ambiguous
    for bad in ({}, {"start": None}, {"start": "yesterday"}, {"start": -3}, {"start": later}):
        status, body = await api.call("POST", BASE + "/reset", bad)
        assert status == 422 and "start" in body["validation_errors"], bad
    status, _ = await api.call("POST", "/api/streams/orders/consumers/nobody/reset", {"start": 1})
    assert status == 404


async def test_a_nack_reason_is_the_dead_letters_last_error(
    request: pytest.FixtureRequest, api: Api
) -> None:
    expect_engine_gap(request, api, "jetstream", "a JetStream NAK carries no reason")
    await api.stream("orders")
    await api.consumer(max_deliver=2)
    await api.publish("orders", msgs("a", "b"))
    first = await api.receive()
    await api.nack([first[0]["ack_id"]], reason="KeyError: 'total'")  # type: ignore[arg-type]
    await api.nack([first[1]["ack_id"]])
    second = await api.receive(wait_for=3000)
    await api.nack([second[0]["ack_id"]], reason="ValueError: no")  # type: ignore[arg-type]
    await api.nack([second[1]["ack_id"]])
    await eventually(api.stats, lambda s: s["dead"] == 2)
    dead = await _dead(api)
    assert [(m["seq"], m["delivery_count"], m.get("last_error")) for m in dead] == [
        (1, 2, "ValueError: no"),  # the last one given
        (2, 2, None),
    ]


async def test_a_nack_reason_must_be_a_short_string(api: Api) -> None:
    await api.stream("orders")
    await api.consumer()
    await api.publish("orders", msgs("a"))
    (item,) = await api.receive()
    for bad in (42, "x" * 1025):
        body = {"ack_ids": [item["ack_id"]], "reason": bad}
        status, answer = await api.call("POST", BASE + "/nack", body)
        assert status == 422 and "reason" in answer["validation_errors"]
    assert (await api.stats())["in_flight"] == 1  # nothing was settled
    await api.nack([item["ack_id"]], reason="x" * 1024)  # type: ignore[arg-type]
    assert keys(await api.receive(wait_for=3000)) == ["a"]
