"""Publishing and catch-up reads: acks, dedupe, compaction, atomicity, filters, waits."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from typing import Any

from tests.http_api import Api, msgs

from .helpers import eventually, keys


async def test_publish_acks_in_request_order(api: Api) -> None:
    await api.stream("orders")
    result = await api.publish("orders", msgs("a", "b", "c"))
    assert result["published"] == 3
    assert [a["seq"] for a in result["acks"]] == [1, 2, 3]
    assert all(a["committed"] for a in result["acks"])
    result = await api.publish("orders", msgs("d"))
    assert result["acks"][0]["seq"] == 4


async def test_publish_by_stream_id(api: Api) -> None:
    stream = await api.stream("orders")
    await api.publish(stream["id"], msgs("a"))
    (message,) = await api.read(stream["id"])
    assert message["stream_id"] == stream["id"]


async def test_headers_ids_and_encoding_round_trip(api: Api) -> None:
    await api.stream("orders")
    raw = bytes(range(256))
    sent: list[dict[str, Any]] = [
        {"key": "a", "data": "plain", "id": "plain-id"},
        {"key": "b", "data": "x", "headers": {"Trace": "1", "weird": "a: b\nc ü", "e": ""}},
        {"key": "c", "data": base64.b64encode(raw).decode(), "encoding": "base64"},
        {"key": "d", "data": "ü ☃ \n\t\"'", "id": "ïd with spaces\nand newline"},
    ]
    await api.publish("orders", sent)
    got = await api.read()
    assert [m["data"] for m in got] == [m["data"] for m in sent]
    assert got[0]["id"] == "plain-id" and "headers" not in got[0] and "encoding" not in got[0]
    assert got[1]["headers"] == sent[1]["headers"] and "id" not in got[1]
    assert got[2]["encoding"] == "base64"
    assert base64.b64decode(got[2]["data"]) == raw
    assert got[3]["id"] == sent[3]["id"]
    await api.consumer()
    delivered = await api.receive()
    assert [d["message"] for d in delivered] == got


async def test_data_is_stored_verbatim(api: Api) -> None:
    await api.stream("orders")
    datas = ['{"total": 12.5}', "", " leading and trailing ", "x" * 100_000]
    await api.publish("orders", [{"key": f"k{i}", "data": d} for i, d in enumerate(datas)])
    assert [m["data"] for m in await api.read()] == datas


async def test_dedupe_returns_original_seq(api: Api) -> None:
    await api.stream("orders")
    first = await api.publish("orders", [{"key": "a", "data": "1", "id": "m1"}])
    again = await api.publish(
        "orders",
        [
            {"key": "b", "data": "new", "id": "m2"},
            {"key": "a", "data": "1", "id": "m1"},
            {"key": "c", "data": "no id"},
            {"key": "b", "data": "new", "id": "m2"},
        ],
    )
    assert again["published"] == 2
    seqs = [a["seq"] for a in again["acks"]]
    assert seqs[1] == first["acks"][0]["seq"] == 1
    assert seqs[0] == seqs[3] == 2 and seqs[2] == 3
    assert [a["id"] for a in again["acks"]] == ["m2", "m1", None, "m2"]
    assert keys(await api.read()) == ["a", "b", "c"]
    only_dups = await api.publish("orders", [{"key": "a", "data": "1", "id": "m1"}])
    assert only_dups["published"] == 0
    assert [(a["id"], a["seq"]) for a in only_dups["acks"]] == [("m1", 1)]
    assert only_dups["acks"][0]["committed"]


async def test_dedupe_is_per_stream(api: Api) -> None:
    await api.stream("one")
    await api.stream("two")
    await api.publish("one", msgs("x", "y"))
    a = await api.publish("one", [{"key": "a", "data": "1", "id": "same"}])
    b = await api.publish("two", [{"key": "a", "data": "1", "id": "same"}])
    assert a["acks"][0]["seq"] == 3 and b["acks"][0]["seq"] == 1
    assert b["published"] == 1


async def test_concurrent_duplicate_publishes_store_once(api: Api) -> None:
    await api.stream("orders")
    batch = [{"key": f"k.{i}", "data": str(i), "id": f"id-{i}"} for i in range(20)]
    results = await asyncio.gather(*(api.publish("orders", batch) for _ in range(8)))
    assert {tuple(a["seq"] for a in r["acks"]) for r in results} == {tuple(range(1, 21))}
    assert sum(r["published"] for r in results) == 20
    stream = await api.ok("GET", "/api/streams/orders")
    assert stream["stats"]["message_count"] == 20


async def test_one_message_per_key(api: Api) -> None:
    await api.stream("kv", one_message_per_key=True, process_unmodified=True)
    await api.publish("kv", [{"key": "a", "data": "1"}, {"key": "b", "data": "1"}])
    first_a = (await api.read("kv"))[0]
    await asyncio.sleep(0.01)
    result = await api.publish("kv", [{"key": "a", "data": "2"}, {"key": "a", "data": "3"}])
    assert result["published"] == 2
    got = await api.read("kv")
    assert [(m["key"], m["data"]) for m in got] == [("b", "1"), ("a", "3")]
    latest_a = got[1]
    assert latest_a["seq"] == 4
    assert latest_a["inserted_at"] == first_a["inserted_at"]
    assert latest_a["updated_at"] > first_a["updated_at"]
    stream = await api.ok("GET", "/api/streams/kv")
    assert stream["stats"]["message_count"] == 2


async def test_process_unmodified_false_skips_identical_data(api: Api) -> None:
    await api.stream("kv", one_message_per_key=True)
    first = await api.publish("kv", [{"key": "a", "data": "same"}])
    again = await api.publish(
        "kv", [{"key": "a", "data": "same"}, {"key": "b", "data": "x"}, {"key": "b", "data": "x"}]
    )
    assert again["published"] == 1
    assert again["acks"][0]["seq"] == first["acks"][0]["seq"] == 1
    assert again["acks"][1]["seq"] == again["acks"][2]["seq"] == 2
    changed = await api.publish("kv", [{"key": "a", "data": "different"}])
    assert changed["published"] == 1 and changed["acks"][0]["seq"] == 3
    assert [(m["key"], m["data"]) for m in await api.read("kv")] == [("b", "x"), ("a", "different")]


async def test_process_unmodified_true_stores_identical_data(api: Api) -> None:
    await api.stream("kv", one_message_per_key=True, process_unmodified=True)
    await api.publish("kv", [{"key": "a", "data": "same"}])
    again = await api.publish("kv", [{"key": "a", "data": "same"}])
    assert again["published"] == 1 and again["acks"][0]["seq"] == 2
    assert [m["seq"] for m in await api.read("kv")] == [2]


async def test_compacted_stream_redelivers_latest_only(api: Api) -> None:
    await api.stream("kv", one_message_per_key=True, process_unmodified=True)
    await api.consumer("kv")
    await api.publish("kv", [{"key": "a", "data": "1"}])
    await api.publish("kv", [{"key": "a", "data": "2"}])
    got = await api.receive("kv")
    assert [(d["message"]["data"], d["message"]["seq"]) for d in got] == [("2", 2)]


async def test_rejected_batch_stores_nothing(api: Api) -> None:
    await api.stream("orders")
    batch = [*msgs("a", "b", "c"), {"key": "bad key", "data": "x"}, *msgs("e")]
    status, err = await api.call("POST", "/api/streams/orders/messages", {"messages": batch})
    assert status == 422
    assert "messages[3].key" in err["validation_errors"]
    assert await api.read() == []
    assert (await api.ok("GET", "/api/streams/orders"))["stats"]["message_count"] == 0


async def test_publish_validation(api: Api) -> None:
    await api.stream("orders")
    for body in [
        {},
        {"messages": []},
        {"messages": "x"},
        {"messages": [{"key": "a"}]},
        {"messages": [{"key": "a.*", "data": "x"}]},
        {"messages": [{"key": "a", "data": 1}]},
        {"messages": [{"key": "a", "data": "x", "encoding": "base64"}]},
        {"messages": [{"key": "a", "data": "x"}] * 1001},
    ]:
        status, _ = await api.call("POST", "/api/streams/orders/messages", body)
        assert status == 422, body
    assert await api.read() == []


async def test_batch_of_1000_lands_in_order(api: Api) -> None:
    await api.stream("orders")
    batch = [{"key": f"k.{i % 7}.{i}", "data": str(i)} for i in range(1000)]
    result = await api.publish("orders", batch)
    assert result["published"] == 1000
    assert [a["seq"] for a in result["acks"]] == list(range(1, 1001))
    got = await api.read(limit=1000)
    assert [(m["seq"], m["data"]) for m in got] == [(i + 1, str(i)) for i in range(1000)]


async def test_read_params(api: Api) -> None:
    await api.stream("orders")
    all_keys = ["eu.1", "us.2", "eu.3", "eu.4.x", "us.5", "eu.6"]
    await api.publish("orders", msgs(*all_keys))
    assert keys(await api.read()) == all_keys
    assert keys(await api.read(limit=2)) == all_keys[:2]
    assert keys(await api.read(after_seq=4)) == all_keys[4:]
    assert keys(await api.read(before_seq=3)) == all_keys[:2]
    assert keys(await api.read(after_seq=1, before_seq=5)) == all_keys[1:4]
    assert keys(await api.read(sort="seq_desc")) == all_keys[::-1]
    assert keys(await api.read(sort="seq_desc", limit=2)) == ["eu.6", "us.5"]
    assert keys(await api.read(sort="seq_desc", before_seq=4)) == ["eu.3", "us.2", "eu.1"]
    assert keys(await api.read(sort="seq_desc", after_seq=4)) == ["eu.6", "us.5"]
    assert keys(await api.read(key_pattern="eu.*")) == ["eu.1", "eu.3", "eu.6"]
    assert keys(await api.read(key_pattern="eu.>")) == ["eu.1", "eu.3", "eu.4.x", "eu.6"]
    assert keys(await api.read(key_pattern="*.*", sort="seq_desc", limit=2)) == ["eu.6", "us.5"]
    assert keys(await api.read(key_pattern="us.*", sort="seq_desc", before_seq=5)) == ["us.2"]
    assert await api.read(key_pattern="nothing.>") == []
    assert await api.read(after_seq=6) == []
    assert await api.read(before_seq=1, sort="seq_desc") == []


async def test_sparse_backward_read_over_a_backlog(api: Api) -> None:
    await api.stream("orders")
    batch = [
        {"key": "rare" if i in (3, 1500) else f"common.{i}", "data": str(i)} for i in range(2000)
    ]
    await api.publish("orders", batch[:1000])
    await api.publish("orders", batch[1000:])
    got = await api.read(key_pattern="rare", sort="seq_desc")
    assert [m["seq"] for m in got] == [1501, 4]
    got = await api.read(sort="seq_desc", limit=3, before_seq=1000)
    assert [m["seq"] for m in got] == [999, 998, 997]


async def test_read_bad_params_are_400(api: Api) -> None:
    await api.stream("orders")
    for params in [{"limit": "0"}, {"limit": "x"}, {"sort": "up"}, {"key_pattern": "a..b"}]:
        status, _ = await api.call("GET", "/api/streams/orders/messages", params=params)
        assert status == 400, params


async def test_read_wait_for_returns_when_a_message_arrives(api: Api) -> None:
    await api.stream("orders")

    async def later() -> None:
        await asyncio.sleep(0.3)
        await api.publish("orders", msgs("a"))

    publisher = asyncio.create_task(later())
    started = time.monotonic()
    got = await api.read(wait_for=5000)
    elapsed = time.monotonic() - started
    await publisher
    assert keys(got) == ["a"]
    assert elapsed < 4


async def test_read_wait_for_times_out_empty(api: Api) -> None:
    await api.stream("orders")
    started = time.monotonic()
    assert await api.read(wait_for=300) == []
    assert time.monotonic() - started >= 0.25


async def test_read_wait_only_wakes_for_matching_keys(api: Api) -> None:
    await api.stream("orders")
    await api.publish("orders", msgs("eu.1"))

    async def later() -> None:
        await asyncio.sleep(0.2)
        await api.publish("orders", msgs("eu.2"))
        await asyncio.sleep(0.2)
        await api.publish("orders", msgs("us.3"))

    publisher = asyncio.create_task(later())
    got = await api.read(key_pattern="us.*", wait_for=5000)
    await publisher
    assert keys(got) == ["us.3"]
    got = await api.read(after_seq=3, wait_for=200)
    assert got == []


def _sequin_hash(data: str) -> str:
    return base64.b64encode(hashlib.sha256(data.encode()).digest()).decode()


async def test_every_sequin_shaped_read_carries_the_hash_of_the_data(api: Api) -> None:
    """Engines may leave ``data_hash`` out of what they store; every read that sends the
    Sequin shape (catch-up pages, receive, dead letters) computes it from the data."""
    await api.stream("orders")
    await api.consumer(max_deliver=1)
    datas = ["plain", "ünïcode ☃", "x" * 5000, "é" * 3000]  # the last two go to data files
    await api.publish("orders", [{"key": f"k{i}", "data": d} for i, d in enumerate(datas)])
    expected = [_sequin_hash(d) for d in datas]
    assert [m["data_hash"] for m in await api.read()] == expected
    assert [m["data_hash"] for m in await api.read(limit=2, sort="seq_desc")] == expected[:1:-1]
    delivered = await api.receive()
    assert [d["message"]["data_hash"] for d in delivered] == expected
    await api.nack([d["ack_id"] for d in delivered])
    await eventually(api.stats, lambda s: s["dead"] == len(datas))
    dead = await api.ok("GET", "/api/streams/orders/consumers/billing/dead")
    assert [m["data_hash"] for m in dead["data"]] == expected


async def test_process_unmodified_false_compares_data_kept_in_data_files(api: Api) -> None:
    await api.stream("kv", one_message_per_key=True)
    big = "b" * 6000
    first = await api.publish("kv", [{"key": "a", "data": big}])
    again = await api.publish("kv", [{"key": "a", "data": big}])
    assert again["published"] == 0 and again["acks"][0]["seq"] == first["acks"][0]["seq"]
    assert (await api.publish("kv", [{"key": "a", "data": big + "!"}]))["published"] == 1
    assert (await api.publish("kv", [{"key": "a", "data": "small now"}]))["published"] == 1
    assert (await api.publish("kv", [{"key": "a", "data": big}]))["published"] == 1
    (kept,) = await api.read("kv")
    assert (kept["data"], kept["data_hash"]) == (big, _sequin_hash(big))
