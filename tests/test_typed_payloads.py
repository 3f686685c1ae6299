"""Typed payloads: pydantic models, msgspec Structs, dataclasses and attrs instances as
event data, and ``decode`` / ``model=`` on the way back, against the in-process server."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

import attrs
import msgspec
import pydantic
import pytest

import streamkit
from streamkit import Event
from streamkit.errors import DecodeError

pytestmark = pytest.mark.timeout(30)


class PydanticLine(pydantic.BaseModel):
    sku: str
    qty: int


class PydanticOrder(pydantic.BaseModel):
    id: int
    total: float
    lines: list[PydanticLine] = []


class MsgspecLine(msgspec.Struct):
    sku: str
    qty: int


class MsgspecOrder(msgspec.Struct):
    id: int
    total: float
    lines: list[MsgspecLine] = []


@dataclasses.dataclass
class DataclassLine:
    sku: str
    qty: int


@dataclasses.dataclass
class DataclassOrder:
    id: int
    total: float
    lines: list[DataclassLine] = dataclasses.field(default_factory=list)
    placed: datetime | None = None


@attrs.define
class AttrsLine:
    sku: str
    qty: int


@attrs.define
class AttrsOrder:
    id: int
    total: float
    lines: list[AttrsLine] = attrs.Factory(list)


def make(model: type[Any], line: type[Any], i: int) -> Any:
    return model(id=i, total=12.5 + i, lines=[line(sku=f"sku-{i}", qty=i + 1)])


KINDS = [
    (PydanticOrder, PydanticLine),
    (MsgspecOrder, MsgspecLine),
    (DataclassOrder, DataclassLine),
    (AttrsOrder, AttrsLine),
]
KIND_IDS = ["pydantic", "msgspec", "dataclass", "attrs"]


@pytest.mark.parametrize(("model", "line"), KINDS, ids=KIND_IDS)
async def test_models_round_trip(
    model: type[Any], line: type[Any], streamkit_client: streamkit.AsyncClient
) -> None:
    client = streamkit_client
    await client.create_stream("orders")
    sent = [make(model, line, i) for i in range(3)]
    events = [Event(order, key="orders.eu") for order in sent]
    assert {e.mimetype for e in events} == {"application/json"}
    await client.publish("orders", events)
    await client.flush()

    got = await client.get("orders", model=model)
    assert [e.decode() for e in got] == sent
    assert got[1].data["lines"] == [{"sku": "sku-1", "qty": 2}]
    assert got[1].json() == got[1].data  # data stays the JSON
    assert got[1].decode() is got[1].decode()  # decoded once
    assert isinstance(got[0].decode(), model)

    iterated = [e.decode() async for e in client.iter("orders", model=model, batch_size=2)]
    assert iterated == sent
    # Without model=, decode takes the class.
    (plain,) = await client.get("orders", max_count=1)
    assert plain.decode(model) == sent[0]


async def test_models_nested_in_plain_data(streamkit_client: streamkit.AsyncClient) -> None:
    client = streamkit_client
    await client.create_stream("orders")
    placed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    order = DataclassOrder(id=1, total=2.0, placed=placed)
    batch = [PydanticLine(sku="a", qty=1), MsgspecLine(sku="b", qty=2), AttrsLine("c", 3)]
    await client.send("orders", [Event({"batch": batch, "order": order}), Event(order)])
    nested, top = await client.get("orders")
    assert nested.data == {
        "batch": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}, {"sku": "c", "qty": 3}],
        "order": {"id": 1, "total": 2.0, "lines": [], "placed": "2026-01-02T03:04:05+00:00"},
    }
    assert top.decode(DataclassOrder) == order  # the timestamp comes back as a datetime


@pytest.mark.parametrize(("model", "line"), KINDS, ids=KIND_IDS)
async def test_a_misfit_names_stream_seq_and_field(
    model: type[Any], line: type[Any], streamkit_client: streamkit.AsyncClient
) -> None:
    client = streamkit_client
    await client.create_stream("orders")
    await client.send(
        "orders",
        [
            Event({"id": 1, "total": 1.0}),
            Event({"id": 2, "total": 1.0, "lines": [{"sku": "x", "qty": "many"}]}),
            Event({"total": 1.0}),
            Event("not json at all", "text/plain"),
        ],
    )
    first, wrong_type, missing, text = await client.get("orders", model=model)
    assert first.decode() == model(id=1, total=1.0)

    with pytest.raises(DecodeError) as info:
        wrong_type.decode()
    assert (info.value.stream, info.value.seq, info.value.field) == ("orders", 2, "lines.0.qty")
    assert "message 2 of 'orders'" in str(info.value) and "lines.0.qty" in str(info.value)

    with pytest.raises(DecodeError) as info:
        missing.decode()
    assert (info.value.seq, info.value.field) == (3, "id")

    with pytest.raises(DecodeError) as info:
        text.decode()
    assert info.value.seq == 4
    assert wrong_type.json()["lines"][0]["qty"] == "many"  # the JSON is still there


async def test_bad_payload_does_not_stall_a_subscription(
    streamkit_client: streamkit.AsyncClient,
) -> None:
    client = streamkit_client
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing")
    await client.send(
        "orders",
        [Event({"id": 1, "total": 1.0}), Event({"id": "two", "total": 2.0})]
        + [Event({"id": i, "total": float(i)}) for i in range(3, 7)],
    )
    good: list[PydanticOrder] = []
    bad: list[DecodeError] = []
    async with client.subscribe(
        "orders", consumer="billing", model=PydanticOrder, wait_for=0.2
    ) as subscription:
        async for event in subscription:
            try:
                good.append(event.decode())
            except DecodeError as exc:
                bad.append(exc)  # left unsettled: no ack, no nack
                continue
            await event.ack()
            if len(good) == 5:
                # The five good ones are acked; the bad one is still held, unacked.
                consumer = await wait_for_stats(
                    client, lambda c: c.pending == 0 and c.in_flight == 1
                )
                assert (consumer.pending, consumer.in_flight) == (0, 1)
                assert subscription.held == 1
                break
    assert [o.id for o in good] == [1, 3, 4, 5, 6]
    assert [(e.seq, e.field) for e in bad] == [(2, "id")]
    # Closing gave it back: it is delivered again, and can be nacked or acked then.
    received = await client.receive("orders", "billing", batch_size=10, wait_for=2)
    assert [e.seq for e in received] == [2]


async def wait_for_stats(
    client: streamkit.AsyncClient, check: Any, timeout: float = 5.0
) -> streamkit.Consumer:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        consumer = await client.get_consumer("orders", "billing")
        if check(consumer) or loop.time() > end:
            return consumer
        await asyncio.sleep(0.02)


def test_decode_needs_a_model_class() -> None:
    event = Event({"id": 1})
    with pytest.raises(TypeError, match="needs a model class"):
        event.decode()
    with pytest.raises(TypeError, match="pydantic model, msgspec Struct, dataclass or attrs"):
        event.decode(dict)


def test_an_event_made_from_a_model_decodes_as_itself() -> None:
    order = PydanticOrder(id=1, total=2.0)
    event = Event(order)
    assert event.decode(PydanticOrder) is order
    assert event.json() == {"id": 1, "total": 2.0, "lines": []}


def test_unknown_objects_still_say_what_is_accepted() -> None:
    with pytest.raises(TypeError, match="pydantic model, msgspec Struct, dataclass or attrs"):
        Event(object())


def test_no_model_library_is_imported_by_streamkit() -> None:
    code = (
        "import sys, streamkit\n"
        "from streamkit import Event\n"
        "e = Event({'a': 1})\n"
        "w = Event.from_wire({'key': 'k', 'seq': 1, 'data': '{}', "
        "'headers': {'content-type': 'application/json'}})\n"
        "print(sorted(m for m in ('pydantic', 'msgspec', 'attr', 'attrs') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
