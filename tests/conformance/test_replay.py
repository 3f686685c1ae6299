"""Replay by time: reads, the live tail and consumers that start at a time."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from streamkit._http.sse_parser import SSEParser
from tests.http_api import Api, msgs

from .helpers import keys


async def _two_batches(api: Api) -> str:
    """Publish a, b, then (a moment later) c, d; return c's ``inserted_at``."""
    await api.stream("orders")
    await api.publish("orders", msgs("a", "b"))
    await asyncio.sleep(0.05)  # c is stored strictly later than b
    await api.publish("orders", msgs("c", "d"))
    (c,) = await api.read(after_seq=2, limit=1)
    assert c["key"] == "c"
    stamp: str = c["inserted_at"]
    return stamp


def _later(stamp: str, delta: timedelta) -> str:
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + delta
    return when.isoformat()


async def test_read_from_time_starts_at_the_first_message_stored_at_or_after(api: Api) -> None:
    at_c = await _two_batches(api)
    assert keys(await api.read(from_time=at_c)) == ["c", "d"]
    # Just before c: still c first (b was stored 50 ms earlier).
    assert keys(await api.read(from_time=_later(at_c, -timedelta(milliseconds=1)))) == ["c", "d"]
    # An offset other than Z means the same instant.
    plus_two = datetime.fromisoformat(at_c.replace("Z", "+00:00")).astimezone(
        timezone(timedelta(hours=2))
    )
    assert keys(await api.read(from_time=plus_two.isoformat())) == ["c", "d"]
    assert keys(await api.read(from_time="2000-01-01T00:00:00Z")) == ["a", "b", "c", "d"]
    assert await api.read(from_time=_later(at_c, timedelta(hours=1))) == []


async def test_read_from_time_with_a_filter_a_limit_and_after_seq(api: Api) -> None:
    at_c = await _two_batches(api)
    await api.publish("orders", [{"key": "other", "data": "x"}, {"key": "e", "data": "y"}])
    assert keys(await api.read(from_time=at_c, key_pattern="other")) == ["other"]
    assert keys(await api.read(from_time=at_c, limit=1)) == ["c"]
    # after_seq and from_time: the later bound wins
    assert keys(await api.read(from_time=at_c, after_seq=3)) == ["d", "other", "e"]
    assert keys(await api.read(from_time="2000-01-01T00:00:00Z", after_seq=3)) == [
        "d",
        "other",
        "e",
    ]


async def test_read_from_time_must_be_rfc3339_with_an_offset(api: Api) -> None:
    await api.stream("orders")
    for bad in ("yesterday", "2026-01-02", "2026-01-02T03:04:05", "1700000000"):
        status, body = await api.call(
            "GET", "/api/streams/orders/messages", params={"from_time": bad}
        )
        assert (status, body["param"]) == (400, "from_time"), bad
        assert "RFC 3339" in body["summary"]


async def test_consumer_starts_at_a_time(api: Api) -> None:
    at_c = await _two_batches(api)
    created = await api.consumer(start=at_c)
    assert created["name"] == "billing"
    got = await api.receive()
    assert keys(got) == ["c", "d"]
    assert (await api.stats())["pending"] == 0


async def test_consumer_starting_after_the_last_message_gets_new_ones_only(api: Api) -> None:
    at_c = await _two_batches(api)
    await api.consumer(start=_later(at_c, timedelta(seconds=1)))
    assert await api.receive() == []
    await api.publish("orders", msgs("e"))
    assert keys(await api.receive(wait_for=3000)) == ["e"]


async def test_consumer_start_must_be_a_position_or_a_time(api: Api) -> None:
    await api.stream("orders")
    for bad in ("yesterday", "2026-01-02T03:04:05", -1, 1.5, {"at": 1}):
        body = {"name": "billing", "filter_key_pattern": ">", "start": bad}
        status, answer = await api.call("POST", "/api/streams/orders/consumers", body)
        assert status == 422, bad
        assert "RFC 3339" in answer["validation_errors"]["start"][0]


async def _tail(api: Api, params: dict[str, str], count: int) -> list[dict[str, Any]]:
    """The first ``count`` messages of a live tail (bounded by a timeout)."""
    url = f"{api.url}/api/streams/orders/messages/sse"
    parser = SSEParser()
    out: list[dict[str, Any]] = []
    async with api.session.get(url, params=params) as response:
        assert response.status == 200, await response.text()

        async def read() -> None:
            async for chunk in response.content.iter_any():
                for sse in parser.feed(chunk):
                    out.append(orjson.loads(sse.data))
                if len(out) >= count:
                    return

        await asyncio.wait_for(read(), 10)
    return out


async def test_live_tail_from_time(api: Api) -> None:
    at_c = await _two_batches(api)
    assert keys(await _tail(api, {"from_time": at_c}, 2)) == ["c", "d"]
    status, body = await api.call(
        "GET", "/api/streams/orders/messages/sse", params={"from_time": "noon"}
    )
    assert (status, body["param"]) == (400, "from_time")


async def test_live_tail_from_a_time_past_the_end_waits_for_new_messages(api: Api) -> None:
    at_c = await _two_batches(api)

    async def publish_soon() -> None:
        await asyncio.sleep(0.2)
        await api.publish("orders", msgs("e"))

    publisher = asyncio.create_task(publish_soon(), name="publish-e")
    try:
        later = _later(at_c, timedelta(seconds=1))
        assert keys(await _tail(api, {"from_time": later}, 1)) == ["e"]
    finally:
        await publisher
