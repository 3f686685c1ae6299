"""A publish body sent in pieces: valid JSON, sent with its length, whole again on a retry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp.web
import orjson
import pytest
from aiohttp.test_utils import TestServer

from streamkit._http.api import BODY_PIECE_BYTES, body_pieces
from streamkit._http.transport import Transport


def _messages(*sizes: int) -> list[str]:
    return [
        orjson.dumps({"key": f"k{i}", "data": "é" * size}).decode() for i, size in enumerate(sizes)
    ]


@pytest.mark.parametrize(
    "sizes",
    [
        (),
        (10,),
        (10,) * 5000,
        (BODY_PIECE_BYTES,) * 5,
        (10, BODY_PIECE_BYTES * 2, 10, 10, BODY_PIECE_BYTES // 2, 10),
    ],
    ids=["none", "one", "many-small", "large", "mixed"],
)
def test_pieces_join_into_the_body(sizes: tuple[int, ...]) -> None:
    messages = _messages(*sizes)
    pieces = body_pieces(messages)
    assert orjson.loads(b"".join(pieces)) == {"messages": [orjson.loads(m) for m in messages]}
    largest = max((len(m.encode()) for m in messages), default=0)
    # No piece holds much more than its share: the body is never one big copy.
    assert all(len(piece) < 3 * (BODY_PIECE_BYTES + largest) for piece in pieces)
    if sum(sizes) > 4 * BODY_PIECE_BYTES:
        assert len(pieces) > 1


def test_a_small_body_is_one_piece() -> None:
    assert len(body_pieces(_messages(*(100,) * 500))) == 1


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[TestServer, list[tuple[dict[str, str], bytes]]]]:
    """A server that records each request's headers and body; the first answer is a 503."""
    seen: list[tuple[dict[str, str], bytes]] = []

    async def handle(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append((dict(request.headers), await request.read()))
        if len(seen) == 1:
            return aiohttp.web.json_response({"summary": "busy"}, status=503)
        return aiohttp.web.json_response({"ok": True})

    app = aiohttp.web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/body", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, seen
    await server.close()


async def test_pieces_are_sent_with_their_length_and_again_whole_on_a_retry(
    recorder: tuple[TestServer, list[tuple[dict[str, str], bytes]]],
) -> None:
    server, seen = recorder
    pieces = body_pieces(_messages(*(BODY_PIECE_BYTES // 2,) * 20))
    assert len(pieces) > 2
    transport = Transport([str(server.make_url(""))], timeout=10.0, retries=2, backoff=0.001)
    try:
        answer = await transport.request("POST", "/body", content=pieces, retry=True)
    finally:
        await transport.close()
    assert answer == {"ok": True}
    assert len(seen) == 2  # the 503, then the retry
    body = b"".join(pieces)
    for headers, received in seen:
        assert received == body
        assert headers["Content-Length"] == str(len(body))
        assert "Transfer-Encoding" not in headers
        assert headers["Content-Type"] == "application/json"
