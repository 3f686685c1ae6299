"""``streamkit publish``: line formats, keys, progress summary, bad input."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from streamkit.client import AsyncClient

from .conftest import RunCli


@pytest.fixture
async def orders(streamkit_client: AsyncClient) -> AsyncClient:
    await streamkit_client.create_stream("orders")
    return streamkit_client


async def test_auto_format_from_a_file(cli: RunCli, orders: AsyncClient, tmp_path: Path) -> None:
    source = tmp_path / "events.ndjson"
    source.write_bytes(b'{"id": 1, "total": 9.5}\nplain text\n\n42\n[1, 2]\r\nno newline at end')
    result = await cli("publish", "orders", str(source), "--key", "orders.eu")
    assert result.code == 0, result.err
    [summary] = result.lines
    assert summary.startswith("published 5 events to orders in ") and "events/s)" in summary

    events = await orders.get("orders")
    assert [e.data for e in events] == [
        {"id": 1, "total": 9.5},
        "plain text",
        42,
        [1, 2],
        "no newline at end",
    ]
    assert {e.key for e in events} == {"orders.eu"}


async def test_stdin_without_key_uses_the_stream_name(cli: RunCli, orders: AsyncClient) -> None:
    lines = b"".join(b"line %d\n" % i for i in range(2500))
    result = await cli("publish", "orders", "--format", "text", stdin=lines)
    assert result.code == 0, result.err
    assert result.out.startswith("published 2,500 events")
    events = await orders.get("orders", max_count=3000)
    assert [e.data for e in events] == [f"line {i}" for i in range(2500)]
    assert {e.key for e in events} == {"orders"}


async def test_text_format_keeps_json_looking_lines_as_text(
    cli: RunCli, orders: AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "in.txt").write_bytes(b'{"a": 1}\n7\n')
    assert (
        await cli("publish", "orders", "--file", str(tmp_path / "in.txt"), "--format", "text")
    ).code == 0
    assert [e.data for e in await orders.get("orders")] == ['{"a": 1}', "7"]


async def test_envelopes_round_trip_through_tail(cli: RunCli, orders: AsyncClient) -> None:
    await orders.create_stream("copy")
    envelopes = [
        {"key": "orders.eu.1", "data": {"total": 1}, "id": "evt-1", "headers": {"region": "eu"}},
        {"key": "orders.us.2", "data": "text payload"},
        {"data": base64.b64encode(b"\xff\x00raw").decode(), "encoding": "base64"},
    ]
    stdin = b"\n".join(orjson.dumps(e) for e in envelopes) + b"\n"
    result = await cli(
        "publish", "orders", "--format", "envelope", "-k", "orders.default", stdin=stdin
    )
    assert result.code == 0, result.err

    stored = await orders.get("orders")
    assert [(e.key, e.data) for e in stored] == [
        ("orders.eu.1", {"total": 1}),
        ("orders.us.2", "text payload"),
        ("orders.default", b"\xff\x00raw"),
    ]
    assert (stored[0].id, stored[0].headers) == ("evt-1", {"region": "eu"})

    tailed = await cli("tail", "orders", "--from", "0")
    copied = await cli("publish", "copy", "--format", "envelope", stdin=tailed.out.encode())
    assert copied.code == 0, copied.err
    copy = await orders.get("copy")
    assert [(e.key, e.id, e.data, e.headers) for e in copy] == [
        (e.key, e.id, e.data, e.headers) for e in stored
    ]


async def test_a_bad_line_stops_after_publishing_the_lines_before(
    cli: RunCli, orders: AsyncClient
) -> None:
    result = await cli("publish", "orders", "--format", "json", stdin=b"1\n2\nthree\n4\n")
    assert result.code == 1
    assert result.out.startswith("published 2 events")
    assert result.err.startswith("streamkit: error: line 3: not JSON")
    assert [e.data for e in await orders.get("orders")] == [1, 2]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"key": "k"}', 'an envelope must be a JSON object with "data"'),
        (b'{"data": 1, "key": "bad key"}', "invalid event key 'bad key'"),
        (b'{"data": 1, "headers": {"a": 1}}', '"headers" must be an object with string values'),
        (b'{"data": "!!", "encoding": "base64"}', '"data" is not valid base64'),
    ],
)
async def test_bad_envelopes(cli: RunCli, orders: AsyncClient, line: bytes, problem: str) -> None:
    result = await cli("publish", "orders", "--format", "envelope", stdin=line)
    assert result.code == 1
    assert result.err.startswith(f"streamkit: error: line 1: {problem}")


async def test_nacked_events_fail_the_command(cli: RunCli) -> None:
    result = await cli("publish", "ghost", stdin=b"1\n")
    assert result.code == 1
    assert "published 0 events" in result.out and "1 not stored" in result.out
    assert result.err.startswith("streamkit: error: 1 event(s) not stored; first: ")


async def test_missing_file(cli: RunCli, orders: AsyncClient, tmp_path: Path) -> None:
    result = await cli("publish", "orders", str(tmp_path / "nope.txt"))
    assert result.code == 1 and "No such file" in result.err
    both = await cli("publish", "orders", "a.txt", "--file", "b.txt")
    assert both.code == 1 and "not both" in both.err
