"""`Received`: a receive's deliveries as columns, checked whole, made into events one by one."""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aioresponses import aioresponses

import streamkit
from streamkit._http.received import Received
from streamkit.errors import DecodeError
from streamkit.models import Event

BASE = "http://streamkit.test"


def columns(count: int = 3, **extra: Any) -> dict[str, Any]:
    return {
        "stream_id": "s1",
        "ack_id": [f"{i}.tok" for i in range(1, count + 1)],
        "delivery_count": [1] * count,
        "seq": list(range(1, count + 1)),
        "key": [f"orders.k{i}" for i in range(count)],
        "data": [f"d{i}" for i in range(count)],
        "inserted_at": ["2026-11-28T12:00:00.000001Z"] * count,
        **extra,
    }


def test_events_are_built_from_the_columns() -> None:
    received = Received.from_columns(
        "orders",
        columns(
            2,
            id=["id-1", None],
            encoding=[None, "base64"],
            headers=[{"content-type": "application/json", "x": "1"}, None],
            data=['{"n": 1}', "AP8="],
        ),
    )
    assert len(received) == 2 and received.ack_ids == ["1.tok", "2.tok"]
    first, second = received.events()
    assert (first.data, first.id, first.headers, first.mimetype) == (
        {"n": 1},
        "id-1",
        {"x": "1"},
        "application/json",
    )
    assert (second.data, second.id, second.seq, second.stream_id) == (b"\x00\xff", "", 2, "s1")
    assert first.ack_id == "1.tok" and first.delivery_count == 1 and first.stream == "orders"
    assert first.inserted_at is not None and first.inserted_at.microsecond == 1
    # Each call builds a new event, with its own delivery.
    again = received.event(0)
    assert again is not first and again.delivery is not first.delivery


def test_a_payload_that_does_not_decode_is_flagged_not_fatal() -> None:
    received = Received.from_columns("orders", columns(1, encoding=["base64"], data=["@@"]))
    (event,) = received.events()
    assert event.data == "@@" and event.decode_error is not None
    assert "base64" in str(event.decode_error)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"seq": [1, 2]}, "seq has 2 entries, ack_id has 3"),
        ({"data": "abc"}, "data is not a list"),
        ({"key": None}, "key is not a list"),
        ({"id": ["a"]}, "id has 1 entries"),
        ({"seq": ["1", "2", "3"]}, "seq must be a list of int"),
        ({"data": ["a", 2, "c"]}, "data must be a list of str"),
        ({"ack_id": ["a", None, "c"]}, "ack_id must be a list of str"),
        ({"delivery_count": [1, 1, True]}, "delivery_count must be a list of int"),
    ],
)
def test_a_malformed_column_fails_the_whole_batch(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(problem)):
        Received.from_columns("orders", columns(**change))


def test_a_missing_column_fails_the_whole_batch() -> None:
    body = columns()
    del body["inserted_at"]
    with pytest.raises(DecodeError, match="malformed deliveries: missing"):
        Received.from_columns("orders", body)


def test_events_exist_only_once_asked_for() -> None:
    gc.collect()
    before = sum(isinstance(o, Event) for o in gc.get_objects())
    received = Received.from_columns("orders", columns(500))
    assert sum(isinstance(o, Event) for o in gc.get_objects()) == before
    event = received.event(499)
    assert sum(isinstance(o, Event) for o in gc.get_objects()) == before + 1
    assert event.seq == 500


# -- over HTTP (aioresponses) ------------------------------------------------------------


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.fixture
async def client() -> AsyncIterator[streamkit.AsyncClient]:
    async with streamkit.connect(BASE, timeout=2.0, retries=0) as c:
        yield c


RECEIVE = re.compile(rf"^{re.escape(BASE)}/api/streams/orders/consumers/billing/receive\?.*")


async def test_receive_asks_for_columns(
    mocked: aioresponses, client: streamkit.AsyncClient
) -> None:
    mocked.post(RECEIVE, payload={"data": columns(2)})
    events = await client.receive("orders", "billing", batch_size=2)
    assert [(e.seq, e.data, e.ack_id) for e in events] == [(1, "d0", "1.tok"), (2, "d1", "2.tok")]
    ((_, url),) = mocked.requests
    assert url.query["deliveries"] == "columns" and url.query["batch_size"] == "2"


async def test_receive_understands_sequin_objects(
    mocked: aioresponses, client: streamkit.AsyncClient
) -> None:
    item = {"ack_id": "7.t", "delivery_count": 3, "message": {"key": "k", "data": "x", "seq": 7}}
    mocked.post(RECEIVE, payload={"data": [item]})
    (event,) = await client.receive("orders", "billing")
    assert (event.seq, event.ack_id, event.delivery_count) == (7, "7.t", 3)


@pytest.mark.parametrize(
    "data",
    [
        {**columns(2), "seq": [1]},
        [{"ack_id": "1.t", "message": {"key": "k", "seq": 1}}],
        [{"message": {"key": "k", "data": "x", "seq": 1}}],
        "garbage",
    ],
)
async def test_a_malformed_receive_is_a_decode_error(
    mocked: aioresponses, client: streamkit.AsyncClient, data: Any
) -> None:
    mocked.post(RECEIVE, payload={"data": data})
    with pytest.raises(DecodeError, match=r"malformed|expected"):
        await client.receive("orders", "billing")
