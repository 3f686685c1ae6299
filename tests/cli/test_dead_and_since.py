"""``streamkit tail --since``, ``consumers create --start WHEN`` and ``streamkit dead ...``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from streamkit import Event
from streamkit.cli.since import parse_since
from streamkit.client import AsyncClient

from .conftest import RunCli

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_since_reads_durations_and_timestamps() -> None:
    assert parse_since("90s", NOW) == NOW - timedelta(seconds=90)
    assert parse_since("10m", NOW) == NOW - timedelta(minutes=10)
    assert parse_since("1h30m", NOW) == NOW - timedelta(minutes=90)
    assert parse_since("2d", NOW) == NOW - timedelta(days=2)
    assert parse_since("1.5h", NOW) == NOW - timedelta(minutes=90)
    assert parse_since("2026-01-01T00:00:00+01:00", NOW) == datetime(
        2025, 12, 31, 23, tzinfo=timezone.utc
    )
    for bad in ("", "10", "ten minutes", "10 m", "-5m", "2026-01-01", "2026-01-01T00:00:00"):
        with pytest.raises(ValueError, match="neither a duration"):
            parse_since(bad, NOW)


def _data(out: str) -> list[object]:
    return [orjson.loads(line)["data"] for line in out.splitlines() if line]


async def _old_then_new(client: AsyncClient) -> datetime:
    """old1, old2; 1.5 s later new1, new2; returns new1's insert time."""
    await client.create_stream("orders")
    await client.send("orders", [Event("old1"), Event("old2")])
    await asyncio.sleep(1.5)
    await client.send("orders", [Event("new1"), Event("new2")])
    (new1,) = await client.get("orders", from_seq=3, max_count=1)
    assert new1.inserted_at is not None
    return new1.inserted_at


async def test_tail_since(cli: RunCli, streamkit_client: AsyncClient) -> None:
    new_at = await _old_then_new(streamkit_client)
    recent = await cli("tail", "orders", "--since", "1s")
    assert recent.code == 0, recent.err
    assert _data(recent.out) == ["new1", "new2"]
    assert _data((await cli("tail", "orders", "--since", "10m")).out) == [
        "old1",
        "old2",
        "new1",
        "new2",
    ]
    stamp = new_at.isoformat().replace("+00:00", "Z")
    assert _data((await cli("tail", "orders", "--since", stamp)).out) == ["new1", "new2"]
    bad = await cli("tail", "orders", "--since", "yesterday")
    assert bad.code == 2 and "neither a duration" in bad.err
    both = await cli("tail", "orders", "--since", "1m", "--from", "1")
    assert both.code == 2 and "not allowed with" in both.err


async def test_consumer_created_with_a_start_time(
    cli: RunCli, streamkit_client: AsyncClient
) -> None:
    await _old_then_new(streamkit_client)
    made = await cli("consumers", "create", "orders", "billing", "--start", "1s")
    assert made.code == 0, made.err
    got = await streamkit_client.receive("orders", "billing")
    assert [e.data for e in got] == ["new1", "new2"]


async def test_dead_list_redrive_discard(cli: RunCli, streamkit_client: AsyncClient) -> None:
    client = streamkit_client
    await client.create_stream("orders")
    await client.create_consumer("orders", "billing", max_deliver=1)
    await client.send("orders", [Event({"n": n}) for n in range(1, 5)])
    await client.nack("orders", "billing", await client.receive("orders", "billing"))

    listed = await cli("dead", "list", "orders", "billing")
    assert listed.code == 0, listed.err
    lines = [orjson.loads(line) for line in listed.lines]
    assert [(d["seq"], d["data"], d["delivery_count"]) for d in lines] == [
        (1, {"n": 1}, 1),
        (2, {"n": 2}, 1),
        (3, {"n": 3}, 1),
        (4, {"n": 4}, 1),
    ]
    assert {d["last_error"] for d in lines} == {None}
    assert len((await cli("dead", "list", "orders", "billing", "-n", "2")).lines) == 2

    redriven = await cli("dead", "redrive", "orders", "billing", "--seq", "2", "--seq", "3")
    assert (redriven.code, redriven.out.strip()) == (0, "redriven: 2")
    back = await client.receive("orders", "billing")
    assert [e.seq for e in back] == [2, 3]
    await client.ack("orders", "billing", back)

    # discarding needs a choice: some seqs, or --all
    assert (await cli("dead", "discard", "orders", "billing")).code == 2
    discarded = await cli("dead", "discard", "orders", "billing", "--seq", "1")
    assert (discarded.code, discarded.out.strip()) == (0, "discarded: 1")
    rest = await cli("dead", "list", "orders", "billing")
    assert [orjson.loads(line)["seq"] for line in rest.lines] == [4]
    everything = await cli("dead", "discard", "orders", "billing", "--all")
    assert everything.out.strip() == "discarded: 1"
    assert (await cli("dead", "list", "orders", "billing")).out == ""
    missing = await cli("dead", "list", "orders", "nobody")
    assert missing.code == 1 and "consumer" in missing.err


async def test_consumers_reset(cli: RunCli, streamkit_client: AsyncClient) -> None:
    await _old_then_new(streamkit_client)
    await streamkit_client.create_consumer("orders", "billing")
    await streamkit_client.ack(
        "orders", "billing", await streamkit_client.receive("orders", "billing")
    )
    done = await cli("consumers", "reset", "orders", "billing", "--start", "1s")
    assert (done.code, done.out.strip()) == (0, "reset orders/billing: 2 pending"), done.err
    got = await streamkit_client.receive("orders", "billing")
    assert [e.data for e in got] == ["new1", "new2"]
    assert (await cli("consumers", "reset", "orders", "billing", "--start", "2")).code == 0
    assert [e.data for e in await streamkit_client.receive("orders", "billing")] == [
        "old2",
        "new1",
        "new2",
    ]
    assert (await cli("consumers", "reset", "orders", "billing")).code == 2  # --start needed
