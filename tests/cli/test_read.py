"""``streamkit tail`` and ``streamkit consume``."""

from __future__ import annotations

import orjson
import pytest

from streamkit import Event
from streamkit.client import AsyncClient

from .conftest import RunCli


@pytest.fixture
async def orders(streamkit_client: AsyncClient) -> AsyncClient:
    """A stream ``orders`` with 12 events, keys alternating ``orders.eu.N`` / ``orders.us.N``."""
    await streamkit_client.create_stream("orders")
    await streamkit_client.send(
        "orders",
        [Event({"n": i}, key=f"orders.{'eu' if i % 2 else 'us'}.{i}") for i in range(1, 13)],
    )
    return streamkit_client


def _seqs(out: str) -> list[int]:
    return [orjson.loads(line)["seq"] for line in out.splitlines() if line]


async def test_tail_prints_the_newest_events(cli: RunCli, orders: AsyncClient) -> None:
    result = await cli("tail", "orders")
    assert result.code == 0, result.err
    assert _seqs(result.out) == list(range(3, 13))
    first = orjson.loads(result.out.splitlines()[0])
    assert (first["key"], first["data"]) == ("orders.eu.3", {"n": 3})
    assert first["inserted_at"].endswith("Z") and first["id"]
    assert _seqs((await cli("tail", "orders", "-n", "2")).out) == [11, 12]
    assert (await cli("tail", "orders", "-n", "0")).out == ""


async def test_tail_from_a_seq_with_a_key_pattern(cli: RunCli, orders: AsyncClient) -> None:
    assert _seqs((await cli("tail", "orders", "--from", "10")).out) == [10, 11, 12]
    eu = await cli("tail", "orders", "--from", "0", "--key-pattern", "orders.eu.*")
    assert _seqs(eu.out) == [1, 3, 5, 7, 9, 11]
    newest_us = await cli("tail", "orders", "-n", "2", "--key-pattern", "orders.us.>")
    assert _seqs(newest_us.out) == [10, 12]


async def test_tail_of_an_empty_or_missing_stream(cli: RunCli, orders: AsyncClient) -> None:
    await orders.create_stream("empty")
    assert (await cli("tail", "empty")).out == ""
    missing = await cli("tail", "ghost")
    assert missing.code == 1 and "Not found" in missing.err


async def test_consume_prints_and_acks(cli: RunCli, orders: AsyncClient) -> None:
    await orders.create_consumer("orders", "billing", "orders.eu.>")
    result = await cli("consume", "orders", "billing", "--max", "6")
    assert result.code == 0, result.err
    lines = [orjson.loads(line) for line in result.lines]
    assert [line["seq"] for line in lines] == [1, 3, 5, 7, 9, 11]
    assert {line["delivery_count"] for line in lines} == {1}
    consumer = await orders.get_consumer("orders", "billing")
    assert (consumer.pending, consumer.in_flight) == (0, 0)


async def test_consume_a_missing_consumer(cli: RunCli, orders: AsyncClient) -> None:
    result = await cli("consume", "orders", "ghost", "--max", "1")
    assert result.code == 1 and "Not found" in result.err
