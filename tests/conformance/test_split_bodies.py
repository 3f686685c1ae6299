"""A split publish body (`streamkit.protocol.split`) stores on every engine what the JSON
body it stands for would, and a broken one stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from streamkit.protocol.split import DATA_SIZE, SPLIT_DATA_CHARS, SPLIT_MESSAGES, pieces
from tests.http_api import Api
from tests.split_bodies import split_body

URL = "/api/streams/orders/messages"
HEADERS = {"Content-Type": SPLIT_MESSAGES}
FIELDS = ("key", "data", "id", "headers", "seq")


async def test_a_split_body_stores_its_messages_on_every_engine(api: Api) -> None:
    await api.stream("orders")
    large = "é" * 5000
    texts = [
        f'{{"key":"a","id":"m-1","{DATA_SIZE}":{len(large.encode())}}}',
        '{"key":"b","data":"small"}',
    ]
    status, body = await api.call(
        "POST", URL, data=b"".join(pieces(texts, [large.encode()])), headers=HEADERS
    )
    assert status == 200, body
    assert body["data"]["published"] == 2
    stored = await api.read("orders")
    assert [(m["key"], m["data"]) for m in stored] == [("a", large), ("b", "small")]
    assert stored[0]["id"] == "m-1"


async def test_a_broken_split_body_stores_nothing_on_every_engine(api: Api) -> None:
    await api.stream("orders")
    texts = [f'{{"key":"a","{DATA_SIZE}":10}}']
    status, body = await api.call(
        "POST", URL, data=b"".join(pieces(texts, [b"too short"])), headers=HEADERS
    )
    assert status == 400 and body["code"] == "malformed_body"
    assert await api.read("orders") == []


LARGE = "x" * 70_000
"""Large ASCII data: the server takes it as the bytes it came in (no text is made of it)."""


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _publish_json(
    api: Api, stream: str, messages: list[dict[str, Any]], chunk: int | None = None
) -> dict[str, Any]:
    return await api.publish(stream, messages)


async def _publish_split(
    api: Api, stream: str, messages: list[dict[str, Any]], chunk: int | None = None
) -> dict[str, Any]:
    body = split_body(messages)
    async with api.session.post(
        f"{api.url}/api/streams/{stream}/messages",
        data=body if chunk is None else _chunks(body, chunk),
        headers=HEADERS,
    ) as response:
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = (await response.json())["data"]
        return answer


@pytest.mark.parametrize("chunk", [None, 1000, 65_537], ids=["whole", "small-chunks", "64k"])
async def test_large_ascii_data_apart_is_stored_as_its_json_would_be(
    api: Api, chunk: int | None
) -> None:
    messages: list[dict[str, Any]] = [
        {"key": "a", "data": LARGE, "id": "m-1"},
        {"key": "b", "data": "small", "id": "m-2"},
        {"key": "c", "data": "y" * 5000 + "é", "id": "m-3"},
        {"key": "d", "data": LARGE[:SPLIT_DATA_CHARS], "id": "m-4"},
    ]
    mixed: list[dict[str, Any]] = [  # shapes differ: stored message by message
        {"key": "e", "data": LARGE, "headers": {"h": "v"}},
        {"key": "f", "data": LARGE + "z"},
    ]
    await api.stream("orders")
    await api.stream("plain")
    for stream, publish in (("orders", _publish_split), ("plain", _publish_json)):
        first = await publish(api, stream, messages, chunk)
        # Sent again, as a retry would: every id is known, nothing is stored twice.
        again = await publish(api, stream, messages, chunk)
        assert (first["published"], again["published"]) == (4, 0)
        assert [a["seq"] for a in again["acks"]] == [a["seq"] for a in first["acks"]]
        assert (await publish(api, stream, mixed, chunk))["published"] == 2
    split, plain = await api.read("orders", limit=10), await api.read("plain", limit=10)
    assert [m["data"] for m in split] == [m["data"] for m in messages + mixed]
    assert [{f: m.get(f) for f in FIELDS} for m in split] == [
        {f: m.get(f) for f in FIELDS} for m in plain
    ]
    orders, json_plain = (
        await api.ok("GET", "/api/streams/orders"),
        await api.ok("GET", "/api/streams/plain"),
    )
    assert orders["stats"] == json_plain["stats"]  # the same count and the same bytes


async def test_large_ascii_data_apart_in_a_stream_of_one_message_per_key(api: Api) -> None:
    await api.stream("kv", one_message_per_key=True)
    first = await _publish_split(api, "kv", [{"key": "a", "data": LARGE}])
    same = await _publish_split(api, "kv", [{"key": "a", "data": LARGE}])
    assert same["published"] == 0 and same["acks"][0]["seq"] == first["acks"][0]["seq"]
    changed = await _publish_split(api, "kv", [{"key": "a", "data": LARGE + "!"}])
    assert changed["published"] == 1
    assert [(m["key"], m["data"]) for m in await api.read("kv")] == [("a", LARGE + "!")]
