"""The publisher sends large data after the JSON (a split body) to a server that says it
takes such bodies (asked before the first one goes), and JSON to a server that does not
(any more)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp.web
import orjson
import pytest
from aiohttp.test_utils import TestServer

import streamkit
from streamkit import Event
from streamkit._http.api import API
from streamkit.protocol import split
from streamkit.protocol.split import DATA_SIZE, SPLIT_DATA_CHARS, SPLIT_MESSAGES
from streamkit.testing import ServerHandle
from tests.stream_reads import read_all

LARGE = "é" * SPLIT_DATA_CHARS


def _record_requests(api: API) -> list[tuple[str, str | None]]:
    """Each request's method and body media type (None: JSON or no body), as sent."""
    seen: list[tuple[str, str | None]] = []
    request = api.transport.request

    async def recording(
        method: str, *args: Any, content_type: str | None = None, **kwargs: Any
    ) -> Any:
        seen.append((method, content_type))
        return await request(method, *args, content_type=content_type, **kwargs)

    api.transport.request = recording  # type: ignore[method-assign]
    return seen


async def test_large_data_goes_apart_from_the_first_batch_once_the_server_says_it_may(
    streamkit_server: ServerHandle,
) -> None:
    async with streamkit.connect(streamkit_server.url) as client:
        await client.create_stream("s")
        seen = _record_requests(client.api)
        assert client.api.takes_split is None
        small_only = [Event("a", key="k"), Event("x" * (SPLIT_DATA_CHARS - 1), key="k")]
        await client.publish("s", small_only)
        await client.flush()
        assert seen == [("POST", None)]  # nothing large: a plain JSON body, no question
        assert client.api.takes_split  # the publish answer said so
        client.api.takes_split = None  # a new client's state again
        first = [Event(LARGE + "0", key="k"), Event("small", key="k")]
        await client.publish("s", first)
        await client.flush()
        assert seen[1:] == [("OPTIONS", None), ("POST", SPLIT_MESSAGES)]
        later = [Event(LARGE + str(i), key="k") for i in range(1, 4)] + [Event("tiny", key="k")]
        await client.publish("s", later)
        await client.flush()
        assert seen[3:] and set(seen[3:]) == {("POST", SPLIT_MESSAGES)}  # asked once only
        stored = await read_all(client, "s")
    events = small_only + first + later
    assert [m.data for m in stored] == [e.data for e in events]
    assert [m.id for m in stored] == [e.id for e in events]


async def test_lanes_sending_at_once_ask_one_question(streamkit_server: ServerHandle) -> None:
    async with streamkit.connect(streamkit_server.url) as client:
        await client.create_stream("s")
        seen = _record_requests(client.api)
        events = [Event(LARGE, key=f"k{i}") for i in range(32)]  # over all eight lanes
        await client.publish("s", events)
        await client.flush()
        assert seen.count(("OPTIONS", None)) == 1
        assert {request for request in seen if request[0] == "POST"} == {("POST", SPLIT_MESSAGES)}
        assert len(await read_all(client, "s")) == 32


async def test_binary_and_json_payloads_go_apart_and_come_back_as_they_were(
    streamkit_server: ServerHandle,
) -> None:
    blob = bytes(range(256)) * 40  # base64 on the wire: past SPLIT_DATA_CHARS
    document = {"items": ["é" * 10] * 500}
    async with streamkit.connect(streamkit_server.url) as client:
        await client.create_stream("s")
        seen = _record_requests(client.api)
        await client.publish("s", [Event(blob, key="k"), Event(document, key="k")])
        await client.flush()
        assert seen == [("OPTIONS", None), ("POST", SPLIT_MESSAGES)]
        binary, json_doc = await read_all(client, "s")
    assert binary.data == blob
    assert json_doc.data == document


@pytest.fixture
async def older_server() -> AsyncIterator[tuple[TestServer, list[tuple[str, bytes]]]]:
    """A server that takes JSON bodies only (as before split bodies): it fails to parse
    a split one as JSON, as such a server would. Records each request."""
    seen: list[tuple[str, bytes]] = []

    async def publish(request: aiohttp.web.Request) -> aiohttp.web.Response:
        raw = await request.read()
        seen.append((request.content_type, raw))
        try:
            count = len(orjson.loads(raw)["messages"])
        except orjson.JSONDecodeError:
            body = {"summary": "Malformed JSON body", "code": "malformed_json"}
            return aiohttp.web.json_response(body, status=400)
        runs = [[1, count, "2026-01-01T00:00:00Z"]]
        return aiohttp.web.json_response({"data": {"published": count, "ack_runs": runs}})

    app = aiohttp.web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/api/streams/{stream}/messages", publish)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, seen
    await server.close()


async def test_a_server_that_stopped_taking_split_bodies_gets_json_again(
    older_server: tuple[TestServer, list[tuple[str, bytes]]],
) -> None:
    server, seen = older_server
    async with streamkit.connect(str(server.make_url("/"))) as client:
        client.api.takes_split = True  # as learned from the server it replaced
        events = [Event(LARGE, key="k"), Event("small", key="k"), Event(LARGE + "!", key="k")]
        acks = [await event.wait_for_ack() for event in await _published(client, events)]
        assert [ack.seq for ack in acks] == [1, 2, 3]
        assert not client.api.takes_split
    (split_type, _), (json_type, body) = seen
    assert split_type == SPLIT_MESSAGES and json_type == "application/json"
    assert [m["data"] for m in orjson.loads(body)["messages"]] == [e.data for e in events]


async def test_messages_encoded_apart_are_joined_again_for_a_json_only_server(
    older_server: tuple[TestServer, list[tuple[str, bytes]]],
) -> None:
    server, seen = older_server
    async with streamkit.connect(str(server.make_url("/"))) as client:
        messages = [
            orjson.dumps({"key": "k", "id": "a", DATA_SIZE: 4}).decode(),
            orjson.dumps({"key": "k", "id": "b", "data": "inline"}).decode(),
        ]
        seqs, _ = await client.api.send_for_seqs("s", messages, blobs=["déjà".encode()[:4]])
        assert client.api.takes_split is False  # its OPTIONS answer: 405
    assert seqs == [1, 2]
    ((content_type, body),) = seen  # sent as JSON at once: the server never said otherwise
    assert content_type == "application/json"
    assert orjson.loads(body)["messages"] == [
        {"key": "k", "id": "a", "data": "déj"},
        {"key": "k", "id": "b", "data": "inline"},
    ]


async def _published(client: streamkit.AsyncClient, events: list[Event]) -> list[Event]:
    await client.publish("s", events)
    await client.flush()
    return events


async def test_large_events_go_as_json_to_a_server_that_does_not_take_split_bodies(
    older_server: tuple[TestServer, list[tuple[str, bytes]]],
) -> None:
    server, seen = older_server
    async with streamkit.connect(str(server.make_url("/"))) as client:
        events = [Event(LARGE + str(i), key="k") for i in range(3)]
        acks = [await event.wait_for_ack() for event in await _published(client, events)]
        assert len(acks) == 3 and client.api.takes_split is False
        more = [Event(LARGE + "!", key="k")]
        await _published(client, more)
    assert [content_type for content_type, _ in seen] == ["application/json"] * 2
    sent = [m["data"] for _, body in seen for m in orjson.loads(body)["messages"]]
    assert sent == [e.data for e in events + more]


def _quirky_server_app(options: str, seen: list[str]) -> aiohttp.web.Application:
    """A streamkit-like server that takes split bodies (its publish answers say so) but
    answers the OPTIONS question badly: it hangs up, or answers with a body."""

    async def ask(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        if options == "hang-up":
            assert request.transport is not None
            request.transport.close()
        return aiohttp.web.Response(status=200, text="<html>hello</html>")

    async def publish(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append(request.content_type)
        raw = await request.read()
        body = split.join([raw]) if request.content_type == SPLIT_MESSAGES else orjson.loads(raw)
        count = len(body["messages"])
        runs = [[len(seen) * 100, count, "2026-01-01T00:00:00Z"]]
        answer = {"data": {"published": count, "ack_runs": runs}}
        return aiohttp.web.json_response(answer, headers={"Accept-Post": split.ACCEPT_POST})

    app = aiohttp.web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("OPTIONS", "/api/streams/{stream}/messages", ask)
    app.router.add_post("/api/streams/{stream}/messages", publish)
    return app


@pytest.mark.parametrize("options", ["hang-up", "a-body"])
async def test_a_question_answered_badly_costs_no_event(options: str) -> None:
    seen: list[str] = []
    server = TestServer(_quirky_server_app(options, seen), host="127.0.0.1")
    await server.start_server()
    try:
        async with streamkit.connect(str(server.make_url("/"))) as client:
            await _published(client, [Event(LARGE, key="k")])
            assert seen == ["application/json"]  # the question failed: JSON this time
            # A network failure left it unknown, a body said no; the publish answer
            # says yes either way, and the next large batch goes apart.
            await _published(client, [Event(LARGE + "!", key="k")])
            assert client.api.takes_split
    finally:
        await server.close()
    assert seen == ["application/json", SPLIT_MESSAGES]
