"""``streamkit streams|consumers|stats``, global options, exit codes."""

from __future__ import annotations

import argparse

import orjson
import pytest

from streamkit import Event
from streamkit.client import AsyncClient
from streamkit.server import serve
from streamkit.testing import run_server

from .conftest import RunCli


async def test_streams_create_list_delete(cli: RunCli, streamkit_client: AsyncClient) -> None:
    created = await cli("streams", "create", "orders")
    assert created.code == 0, created.err
    assert created.out.startswith("created stream orders (id ")
    assert [s.name for s in await streamkit_client.list_streams()] == ["orders"]

    listed = await cli("streams", "list")
    assert listed.code == 0
    assert "orders" in listed.out and "Messages" in listed.out

    as_json = await cli("streams", "list", "--json")
    assert [orjson.loads(line)["name"] for line in as_json.lines] == ["orders"]

    deleted = await cli("streams", "delete", "orders")
    assert (deleted.code, deleted.out.strip()) == (0, "deleted stream orders")
    assert await streamkit_client.list_streams() == []


async def test_create_twice_fails_unless_exist_ok(cli: RunCli) -> None:
    assert (await cli("streams", "create", "orders")).code == 0
    again = await cli("streams", "create", "orders")
    assert again.code == 1
    assert again.err.strip() == (
        "streamkit: error: 422: Validation failed (name has already been taken)"
    )
    assert (await cli("streams", "create", "orders", "--exist-ok")).code == 0


async def test_delete_missing(cli: RunCli) -> None:
    missing = await cli("streams", "delete", "ghost")
    assert missing.code == 1
    assert "Not found" in missing.err and "Traceback" not in missing.err
    assert (await cli("streams", "delete", "ghost", "--missing-ok")).code == 0


async def test_consumers_create_list_delete(cli: RunCli, streamkit_client: AsyncClient) -> None:
    await streamkit_client.create_stream("orders")
    created = await cli(
        "consumers", "create", "orders", "billing", "--filter", "orders.eu.*",
        "--ack-wait", "2.5", "--max-deliver", "3", "--start", "new",
    )  # fmt: skip
    assert created.code == 0, created.err
    assert "created consumer billing on orders (filter orders.eu.*" in created.out
    consumer = await streamkit_client.get_consumer("orders", "billing")
    assert (consumer.filter_key_pattern, consumer.ack_wait_ms, consumer.max_deliver) == (
        "orders.eu.*",
        2500,
        3,
    )

    listed = await cli("consumers", "list", "orders")
    assert "billing" in listed.out and "orders.eu.*" in listed.out and "2.5s" in listed.out
    as_json = await cli("consumers", "list", "orders", "--json")
    assert orjson.loads(as_json.lines[0])["filter_key_pattern"] == "orders.eu.*"

    assert (await cli("consumers", "delete", "orders", "billing")).code == 0
    assert await streamkit_client.list_consumers("orders") == []


async def test_stats_tables_and_json(cli: RunCli, streamkit_client: AsyncClient) -> None:
    await streamkit_client.create_stream("orders")
    await streamkit_client.create_stream("audit")
    await streamkit_client.create_consumer("orders", "billing", "orders.>")
    await streamkit_client.send("orders", [_event(f"orders.eu.{i}") for i in range(3)])

    tables = await cli("stats")
    assert tables.code == 0, tables.err
    assert "Streams" in tables.out and "Consumers" in tables.out
    row = next(line for line in tables.lines if "billing" in line)
    assert "orders.>" in row and "durable" in row and " 3 " in row  # 3 pending

    body = orjson.loads((await cli("stats", "--json", "orders")).out)
    [orders] = body["streams"]
    assert (orders["name"], orders["message_count"]) == ("orders", 3)
    assert [(c["name"], c["pending"]) for c in orders["consumers"]] == [("billing", 3)]


async def test_stats_of_a_missing_stream(cli: RunCli) -> None:
    result = await cli("stats", "ghost")
    assert result.code == 1 and "Not found" in result.err


async def test_usage_errors_exit_2(cli: RunCli) -> None:
    assert (await cli()).code == 2
    assert (await cli("streams")).code == 2
    assert (await cli("tail")).code == 2
    bad_name = await cli("streams", "create", "no spaces")
    assert bad_name.code == 2 and "invalid name 'no spaces'" in bad_name.err
    assert (await cli("consumers", "create", "s", "c", "--filter", "a.>.b")).code == 2
    assert (await cli("consume", "s", "c", "--max", "0")).code == 2
    assert (await cli("--help")).code == 0
    assert (await cli("--version")).out.startswith("streamkit ")


async def test_unreachable_server_is_one_line(cli: RunCli) -> None:
    result = await cli("--url", "http://127.0.0.1:9", "streams", "list")
    assert result.code == 1
    [line] = result.err.splitlines()
    assert line.startswith("streamkit: error: http://127.0.0.1:9: ")


async def test_url_and_api_key_options(cli: RunCli) -> None:
    async with run_server(api_key="s3cret") as server:
        refused = await cli("streams", "list", "--url", server.url)
        assert refused.code == 1 and "401" in refused.err
        ok = await cli("--url", server.url, "--api-key", "s3cret", "streams", "create", "x")
        assert ok.code == 0, ok.err
        after = await cli("streams", "list", "--json", "--url", server.url, "--api-key", "s3cret")
        assert [orjson.loads(line)["name"] for line in after.lines] == ["x"]


def _event(key: str) -> Event:
    return Event({"key": key}, key=key)


async def test_api_key_before_serve_is_the_servers_key(
    cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[argparse.Namespace] = []

    def run(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(serve, "run", run)
    assert (await cli("--api-key", "k1", "serve", "--port", "0")).code == 0
    assert (await cli("serve", "--api-key", "k2")).code == 0
    assert [args.api_key for args in seen] == ["k1", "k2"]
