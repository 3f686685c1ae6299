"""A split publish body (`streamkit.protocol.split`) stores on every engine what the JSON
body it stands for would, and a broken one stores nothing."""

from __future__ import annotations

from streamkit.protocol.split import DATA_SIZE, SPLIT_MESSAGES, pieces
from tests.http_api import Api

URL = "/api/streams/orders/messages"
HEADERS = {"Content-Type": SPLIT_MESSAGES}


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
