"""Publishing and reading messages: acks, dedupe, compaction, validation, reads."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp

from streamkit.testing import run_server
from tests.http_api import Api, msgs


async def _stored(api: Api, stream: str = "orders", **params: str | int) -> list[dict[str, Any]]:
    body = await api.ok("GET", f"/api/streams/{stream}/messages", params=params)
    data: list[dict[str, Any]] = body["data"]
    return data


async def test_publish_acks_in_request_order(api: Api) -> None:
    stream = await api.stream("orders")
    result = await api.publish(
        "orders", [{"key": "a", "data": "1", "id": "m1"}, {"key": "b", "data": "2"}]
    )
    assert result["published"] == 2
    assert [(a["id"], a["seq"]) for a in result["acks"]] == [("m1", 1), (None, 2)]
    assert all(a["committed"].endswith("Z") for a in result["acks"])
    stored = await _stored(api)
    assert [m["seq"] for m in stored] == [1, 2]
    first = stored[0]
    assert first["key"] == "a" and first["data"] == "1" and first["id"] == "m1"
    assert first["stream_id"] == stream["id"]
    assert isinstance(first["data_hash"], str) and first["data_hash"]
    assert "id" not in stored[1] and "headers" not in stored[1] and "encoding" not in stored[1]


async def test_publish_by_stream_id(api: Api) -> None:
    stream = await api.stream("orders")
    assert (await api.publish(stream["id"], msgs("a")))["published"] == 1


async def test_headers_and_encoding_round_trip(api: Api) -> None:
    await api.stream("orders")
    raw = base64.b64encode(b"\x00\xffbinary").decode()
    await api.publish(
        "orders",
        [
            {"key": "a", "data": "x", "headers": {"content-type": "text/plain", "trace": "1"}},
            {"key": "b", "data": raw, "encoding": "base64"},
        ],
    )
    first, second = await _stored(api)
    assert first["headers"] == {"content-type": "text/plain", "trace": "1"}
    assert second["encoding"] == "base64"
    assert base64.b64decode(second["data"]) == b"\x00\xffbinary"
    await api.consumer()
    received = await api.receive()
    assert received[0]["message"]["headers"] == first["headers"]
    assert received[1]["message"]["encoding"] == "base64"


async def test_dedupe_returns_original_seq(api: Api) -> None:
    await api.stream("orders")
    first = await api.publish("orders", [{"key": "a", "data": "1", "id": "x"}])
    again = await api.publish(
        "orders",
        [
            {"key": "a", "data": "1", "id": "x"},
            {"key": "b", "data": "2", "id": "y"},
            {"key": "b", "data": "2", "id": "y"},  # duplicate inside one batch
            {"key": "c", "data": "3"},
            {"key": "c", "data": "3"},  # no id: no dedupe
        ],
    )
    assert again["published"] == 3
    seqs = [a["seq"] for a in again["acks"]]
    assert seqs == [1, 2, 2, 3, 4]
    assert again["acks"][0]["committed"] == first["acks"][0]["committed"]
    assert [m["seq"] for m in await _stored(api)] == [1, 2, 3, 4]


async def test_dedupe_is_per_stream(api: Api) -> None:
    await api.stream("a")
    await api.stream("b")
    assert (await api.publish("a", [{"key": "k", "data": "1", "id": "x"}]))["published"] == 1
    assert (await api.publish("b", [{"key": "k", "data": "1", "id": "x"}]))["published"] == 1


async def test_concurrent_duplicate_publishes_store_once(api: Api) -> None:
    await api.stream("orders")
    batch = [{"key": "k", "data": str(i), "id": f"id-{i}"} for i in range(50)]
    results = await asyncio.gather(*(api.publish("orders", batch) for _ in range(8)))
    assert sum(r["published"] for r in results) == 50
    expected = [a["seq"] for a in results[0]["acks"]]
    assert all([a["seq"] for a in r["acks"]] == expected for r in results)
    assert len(await _stored(api, limit=1000)) == 50


async def test_dedupe_window_expires() -> None:
    async with run_server(dedupe_window_ms=50) as server, aiohttp.ClientSession() as session:
        api = Api(session, server.url)
        await api.stream("orders")
        await api.publish("orders", [{"key": "a", "data": "1", "id": "x"}])
        await asyncio.sleep(0.1)
        again = await api.publish("orders", [{"key": "a", "data": "1", "id": "x"}])
        assert again["published"] == 1
        assert again["acks"][0]["seq"] == 2


async def test_one_message_per_key(api: Api) -> None:
    await api.stream("kv", one_message_per_key=True)
    await api.publish("kv", [{"key": "a", "data": "1"}, {"key": "b", "data": "1"}])
    result = await api.publish("kv", [{"key": "a", "data": "2"}, {"key": "a", "data": "3"}])
    assert result["published"] == 2
    stored = await _stored(api, "kv")
    assert [(m["key"], m["data"], m["seq"]) for m in stored] == [("b", "1", 2), ("a", "3", 4)]
    latest_a = stored[1]
    assert latest_a["inserted_at"] <= latest_a["updated_at"]
    stats = (await api.ok("GET", "/api/streams/kv"))["stats"]
    assert stats["message_count"] == 2
    assert stats["storage_size"] == 4


async def test_process_unmodified_false_skips_identical_data(api: Api) -> None:
    await api.stream("kv", one_message_per_key=True)
    await api.publish("kv", [{"key": "a", "data": "same"}])
    again = await api.publish("kv", [{"key": "a", "data": "same"}])
    assert again["published"] == 0
    assert again["acks"][0]["seq"] == 1
    assert [m["seq"] for m in await _stored(api, "kv")] == [1]
    changed = await api.publish("kv", [{"key": "a", "data": "new"}])
    assert changed["published"] == 1
    assert [(m["seq"], m["data"]) for m in await _stored(api, "kv")] == [(2, "new")]


async def test_compacted_stream_redelivers_latest_only(api: Api) -> None:
    await api.stream("kv", one_message_per_key=True)
    await api.consumer("kv", "c", ack_wait_ms=100)
    await api.publish("kv", [{"key": "a", "data": "1"}])
    (first,) = await api.receive("kv", "c")
    await api.publish("kv", [{"key": "a", "data": "2"}])
    await asyncio.sleep(0.15)  # the first delivery's deadline passes
    got = await api.receive("kv", "c")
    assert [d["message"]["data"] for d in got] == ["2"]
    await api.ack([first["ack_id"], got[0]["ack_id"]], "kv", "c")
    stats = (await api.ok("GET", "/api/streams/kv/consumers/c"))["stats"]
    assert stats == {"pending": 0, "in_flight": 0, "dead": 0, "skipped": 0}


async def test_rejected_batch_stores_nothing(api: Api) -> None:
    await api.stream("orders")
    batch: list[dict[str, Any]] = [
        {"key": f"k.{i}", "data": str(i), "id": f"i{i}"} for i in range(5)
    ]
    batch[3] = {"key": "bad key", "data": "x"}
    status, body = await api.call("POST", "/api/streams/orders/messages", {"messages": batch})
    assert status == 422
    assert body["summary"] == "Validation failed"
    assert list(body["validation_errors"]) == ["messages[3].key"]
    assert await _stored(api) == []
    # the valid ids of the rejected batch were not remembered
    ok = await api.publish("orders", [batch[0]])
    assert ok["published"] == 1 and ok["acks"][0]["seq"] == 1


async def test_publish_validation(api: Api) -> None:
    await api.stream("orders")
    cases: list[tuple[Any, str]] = [
        ({}, "messages"),
        ({"messages": "x"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"key": "a", "data": "x"}] * 1001}, "messages"),
        ({"messages": ["x"]}, "messages[0]"),
        ({"messages": [{"data": "x"}]}, "messages[0].key"),
        ({"messages": [{"key": "", "data": "x"}]}, "messages[0].key"),
        ({"messages": [{"key": "a.*", "data": "x"}]}, "messages[0].key"),
        ({"messages": [{"key": "a.>", "data": "x"}]}, "messages[0].key"),
        ({"messages": [{"key": "a..b", "data": "x"}]}, "messages[0].key"),
        ({"messages": [{"key": "a\n", "data": "x"}]}, "messages[0].key"),
        ({"messages": [{"key": "k" * 256, "data": "x"}]}, "messages[0].key"),
        ({"messages": [{"key": ".".join("a" * 17), "data": "x"}]}, "messages[0].key"),
        ({"messages": [{"key": 5, "data": "x"}]}, "messages[0].key"),
        ({"messages": [{"key": "a"}]}, "messages[0].data"),
        ({"messages": [{"key": "a", "data": {"x": 1}}]}, "messages[0].data"),
        ({"messages": [{"key": "a", "data": 12}]}, "messages[0].data"),
        ({"messages": [{"key": "a", "data": "x", "id": ""}]}, "messages[0].id"),
        ({"messages": [{"key": "a", "data": "x", "id": 3}]}, "messages[0].id"),
        ({"messages": [{"key": "a", "data": "x", "headers": "h"}]}, "messages[0].headers"),
        ({"messages": [{"key": "a", "data": "x", "headers": {"a": 1}}]}, "messages[0].headers"),
        ({"messages": [{"key": "a", "data": "x", "encoding": "gzip"}]}, "messages[0].encoding"),
        ({"messages": [{"key": "a", "data": "!!", "encoding": "base64"}]}, "messages[0].data"),
    ]
    for body, field in cases:
        status, err = await api.call("POST", "/api/streams/orders/messages", body)
        assert status == 422, body
        assert field in err["validation_errors"], (field, err)
    assert await _stored(api) == []


async def test_publish_reports_every_bad_message(api: Api) -> None:
    await api.stream("orders")
    batch = [{"key": "ok", "data": "x"}, {"key": "a b", "data": 1}, {"key": "ok", "data": None}]
    status, err = await api.call("POST", "/api/streams/orders/messages", {"messages": batch})
    assert status == 422
    assert set(err["validation_errors"]) == {
        "messages[1].key",
        "messages[1].data",
        "messages[2].data",
    }


async def test_batch_of_1000(api: Api) -> None:
    await api.stream("orders")
    batch = [{"key": f"k.{i % 7}", "data": str(i)} for i in range(1000)]
    result = await api.publish("orders", batch)
    assert result["published"] == 1000
    assert [a["seq"] for a in result["acks"]] == list(range(1, 1001))


async def test_read_params(api: Api) -> None:
    await api.stream("orders")
    keys = ["orders.eu.1", "orders.us.2", "orders.eu.3", "audit.x", "orders.eu.4.extra"]
    await api.publish("orders", msgs(*keys))

    def seqs(found: list[dict[str, Any]]) -> list[int]:
        return [m["seq"] for m in found]

    assert seqs(await _stored(api)) == [1, 2, 3, 4, 5]
    assert seqs(await _stored(api, sort="seq_desc")) == [5, 4, 3, 2, 1]
    assert seqs(await _stored(api, sort="seq_desc", limit=2)) == [5, 4]
    assert seqs(await _stored(api, limit=2)) == [1, 2]
    assert seqs(await _stored(api, after_seq=2, limit=2)) == [3, 4]
    assert seqs(await _stored(api, before_seq=3, sort="seq_desc")) == [2, 1]
    assert seqs(await _stored(api, after_seq=1, before_seq=4)) == [2, 3]
    assert seqs(await _stored(api, key_pattern="orders.eu.*")) == [1, 3]
    assert seqs(await _stored(api, key_pattern="orders.>")) == [1, 2, 3, 5]
    assert seqs(await _stored(api, key_pattern="orders.*.1")) == [1]
    assert seqs(await _stored(api, key_pattern="audit.x")) == [4]
    assert seqs(await _stored(api, key_pattern="*.*.*.*")) == [5]
    assert seqs(await _stored(api, key_pattern=">")) == [1, 2, 3, 4, 5]


async def test_read_bad_params_are_400(api: Api) -> None:
    await api.stream("orders")
    for params in [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"sort": "random"},
        {"key_pattern": "a.>.b"},
        {"key_pattern": "a b"},
        {"after_seq": "-1"},
        {"before_seq": "x"},
        {"wait_for": "-5"},
    ]:
        status, err = await api.call("GET", "/api/streams/orders/messages", params=params)
        assert status == 400, params
        (name,) = params
        assert err["param"] == name
        assert f"`{name}`" in err["summary"]


async def test_read_wait_for_returns_when_a_message_arrives(api: Api) -> None:
    await api.stream("orders")
    await api.publish("orders", msgs("a"))

    async def later() -> None:
        await asyncio.sleep(0.2)
        await api.publish("orders", msgs("b", "c"))

    publisher = asyncio.create_task(later())
    loop = asyncio.get_running_loop()
    started = loop.time()
    found = await _stored(api, after_seq=1, wait_for=10_000)
    elapsed = loop.time() - started
    await publisher
    assert [m["key"] for m in found] == ["b", "c"]
    assert elapsed < 5


async def test_read_wait_for_times_out_empty(api: Api) -> None:
    await api.stream("orders")
    assert await _stored(api, wait_for=100) == []


async def test_read_wait_only_wakes_for_matching_keys(api: Api) -> None:
    await api.stream("orders")

    async def later() -> None:
        await asyncio.sleep(0.05)
        await api.publish("orders", msgs("other"))
        await asyncio.sleep(0.1)
        await api.publish("orders", msgs("wanted"))

    publisher = asyncio.create_task(later())
    found = await _stored(api, key_pattern="wanted", wait_for=5000)
    await publisher
    assert [m["key"] for m in found] == ["wanted"]


async def test_data_is_stored_verbatim(api: Api) -> None:
    await api.stream("orders")
    tricky = ["", "nul\x00byte", "ünïcødé ✓ 🚀", " padded ", '{"json": [1, 2]}', "x" * 100_000]
    await api.publish("orders", [{"key": "k", "data": d} for d in tricky])
    assert [m["data"] for m in await _stored(api)] == tricky
