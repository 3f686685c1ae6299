"""Publishing with a split body (`streamkit.protocol.split`): stored exactly as the JSON
body it stands for, under the same rules; a broken one is refused and stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from streamkit.protocol.split import ACCEPT_POST, DATA_SIZE, SPLIT_MESSAGES
from streamkit.testing import run_server
from tests.http_api import Api
from tests.split_bodies import split_body

URL = "/api/streams/orders/messages"
HEADERS = {"Content-Type": SPLIT_MESSAGES}
FIELDS = ("key", "data", "id", "headers", "seq")


def _frame(doc: object, data: bytes = b"") -> bytes:
    json_part = orjson.dumps(doc)
    return len(json_part).to_bytes(4, "big") + json_part + data


async def _count(api: Api, stream: str = "orders") -> int:
    count: int = (await api.ok("GET", f"/api/streams/{stream}"))["stats"]["message_count"]
    return count


async def test_a_split_body_stores_what_its_json_body_would(api: Api) -> None:
    messages: list[dict[str, Any]] = [
        {"key": "a", "data": "small"},
        {"key": "b", "data": "é" * 5000, "id": "big-1", "headers": {"h": "v"}},
        {"key": "c", "data": "x" * 70_000},
        {"key": "d", "data": '"quoted"\n' * 600},
    ]
    await api.stream("orders")
    await api.stream("plain")
    await api.publish("plain", messages)
    status, body = await api.call("POST", URL, data=split_body(messages), headers=HEADERS)
    assert status == 200, body
    assert body["data"]["published"] == 4
    split = await api.read("orders", limit=10)
    plain = await api.read("plain", limit=10)
    assert [{f: m.get(f) for f in FIELDS} for m in split] == [
        {f: m.get(f) for f in FIELDS} for m in plain
    ]
    assert [m["data"] for m in split] == [m["data"] for m in messages]


async def test_a_publish_answer_says_split_bodies_are_taken(
    api: Api, streamkit_server: Any
) -> None:
    await api.stream("orders")
    for data, headers in ((None, None), (split_body([{"key": "k", "data": "x"}]), HEADERS)):
        async with api.session.post(
            streamkit_server.url + URL,
            json=None if data else {"messages": [{"key": "k", "data": "x"}]},
            data=data,
            headers=headers,
        ) as response:
            assert response.status == 200
            assert response.headers["Accept-Post"] == ACCEPT_POST


async def test_the_messages_route_says_what_it_takes_when_asked(
    api: Api, streamkit_server: Any
) -> None:
    for stream in ("orders", "no-such-stream"):  # the route's answer, for any stream
        async with api.session.options(
            f"{streamkit_server.url}/api/streams/{stream}/messages"
        ) as response:
            assert response.status == 204
            assert response.headers["Accept-Post"] == ACCEPT_POST
            assert set(response.headers["Allow"].split(", ")) == {"GET", "OPTIONS", "POST"}
            assert await response.read() == b""


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00", "4-byte length of its JSON part"),
        (_frame({"messages": [{"key": "k", "data": "d"}]})[:-3], "follow the length"),
        (_frame({"messages": [{"key": "k", "data": "d"}]}, b"junk"), "4 bytes after the JSON part"),
        (_frame({"messages": [{"key": "k", DATA_SIZE: 9}]}, b"short"), "add up to more"),
    ],
    ids=["no-length", "cut-json", "leftover", "sizes-past-end"],
)
async def test_a_broken_split_body_is_a_400_that_stores_nothing(
    api: Api, raw: bytes, reason: str
) -> None:
    await api.stream("orders")
    status, body = await api.call("POST", URL, data=raw, headers=HEADERS)
    assert status == 400
    assert body["code"] == "malformed_body"
    assert reason in body["summary"]
    assert await _count(api) == 0


async def test_a_split_body_with_a_malformed_json_part_says_so(api: Api) -> None:
    await api.stream("orders")
    status, body = await api.call("POST", URL, data=b"\x00\x00\x00\x02{[", headers=HEADERS)
    assert status == 400 and "JSON part is malformed" in body["summary"]


async def test_messages_at_fault_are_a_422_naming_them_and_nothing_is_stored(api: Api) -> None:
    await api.stream("orders")
    doc = {
        "messages": [
            {"key": "fine", "data": "ok"},
            {"key": "k", DATA_SIZE: 2},
            {"key": "bad key!", DATA_SIZE: 1},
        ]
    }
    status, body = await api.call("POST", URL, data=_frame(doc, b"\xc3(x"), headers=HEADERS)
    assert status == 422
    assert body["validation_errors"] == {"messages[1].data": ["is not valid UTF-8 (at byte 0)"]}
    assert await _count(api) == 0
    # Once the data section is good, the JSON body's own rules apply, as for JSON.
    status, body = await api.call("POST", URL, data=_frame(doc, b"abc"), headers=HEADERS)
    assert status == 422 and list(body["validation_errors"]) == ["messages[2].key"]
    assert await _count(api) == 0


async def test_data_apart_has_the_size_limit_of_data_inside() -> None:
    async with run_server(max_message_bytes=8192) as server, aiohttp.ClientSession() as session:
        api = Api(session, server.url)
        await api.stream("orders")
        body = split_body([{"key": "k", "data": "x" * 5000}, {"key": "k", "data": "é" * 4097}])
        status, answer = await api.call("POST", URL, data=body, headers=HEADERS)
        assert status == 413
        assert list(answer["validation_errors"]) == ["messages[1].data"]
        assert await _count(api) == 0


async def test_a_split_body_past_max_body_bytes_is_a_413() -> None:
    async with run_server(max_body_bytes=50_000) as server, aiohttp.ClientSession() as session:
        api = Api(session, server.url)
        await api.stream("orders")
        body = split_body([{"key": "k", "data": "x" * 60_000}])
        status, answer = await api.call("POST", URL, data=body, headers=HEADERS)
        assert status == 413 and answer["code"] == "payload_too_large"
        assert await _count(api) == 0


async def test_a_split_body_sent_in_small_chunks_is_stored_whole(
    api: Api, streamkit_server: Any
) -> None:
    async def chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start : start + size]

    messages = [{"key": f"k{i}", "data": "é€" * (3000 + i)} for i in range(20)]
    await api.stream("orders")
    async with api.session.post(
        streamkit_server.url + URL, data=chunks(split_body(messages), 777), headers=HEADERS
    ) as response:
        assert response.status == 200, await response.text()
    assert [m["data"] for m in await api.read("orders", limit=50)] == [m["data"] for m in messages]
