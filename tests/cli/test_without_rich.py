"""Without rich (the ``[cli]`` extra) the commands that only print JSON lines still work;
the ones that draw say what to install. Each runs in a child process where
``import rich`` fails."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from streamkit import Event
from streamkit.client import AsyncClient
from streamkit.testing import ServerHandle

from .conftest import cli_process
from .test_process import NO_RICH

WAIT = 15.0


async def _run(url: str, *argv: str) -> tuple[int, str, str]:
    proc = cli_process(*argv, url=url, prelude=NO_RICH)
    try:
        out, err = await asyncio.wait_for(asyncio.to_thread(proc.communicate), WAIT)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def orders(streamkit_client: AsyncClient) -> AsyncClient:
    await streamkit_client.create_stream("orders")
    await streamkit_client.create_consumer("orders", "billing", "orders.>")
    await streamkit_client.send("orders", [Event({"n": n}, key=f"orders.eu.{n}") for n in (1, 2)])
    return streamkit_client


async def test_tail_and_stats_json_run_without_rich(
    streamkit_server: ServerHandle, orders: AsyncClient
) -> None:
    code, out, err = await _run(streamkit_server.url, "tail", "orders")
    assert (code, err) == (0, "")
    assert [orjson.loads(line)["data"] for line in out.splitlines()] == [{"n": 1}, {"n": 2}]

    code, out, err = await _run(streamkit_server.url, "stats", "--json")
    assert (code, err) == (0, "")
    [stream] = orjson.loads(out)["streams"]
    assert (stream["name"], stream["message_count"]) == ("orders", 2)
    assert [(c["name"], c["pending"]) for c in stream["consumers"]] == [("billing", 2)]


async def test_consume_and_json_listings_run_without_rich(
    streamkit_server: ServerHandle, orders: AsyncClient
) -> None:
    code, out, err = await _run(streamkit_server.url, "consume", "orders", "billing", "--max", "2")
    assert (code, err) == (0, "")
    assert [orjson.loads(line)["seq"] for line in out.splitlines()] == [1, 2]
    assert (await orders.get_consumer("orders", "billing")).pending == 0  # acked

    code, out, _ = await _run(streamkit_server.url, "streams", "list", "--json")
    assert code == 0 and [orjson.loads(line)["name"] for line in out.splitlines()] == ["orders"]
    code, out, _ = await _run(streamkit_server.url, "consumers", "list", "orders", "--json")
    assert code == 0 and [orjson.loads(line)["name"] for line in out.splitlines()] == ["billing"]


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (("stats",), "stats"),
        (("consumers", "list", "orders"), "consumers"),
        (("publish", "orders"), "publish"),
    ],
)
async def test_what_draws_says_how_to_install_rich(
    streamkit_server: ServerHandle, orders: AsyncClient, argv: tuple[str, ...], command: str
) -> None:
    code, out, err = await _run(streamkit_server.url, *argv)
    assert (code, out) == (1, "")
    assert err.strip() == (
        f"streamkit: error: `streamkit {command}` needs rich: pip install 'aiostreamkit[cli]'"
    )


def test_the_child_really_has_no_rich() -> None:
    proc = cli_process(prelude=NO_RICH + "; import rich.table")
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 1 and b"ModuleNotFoundError" in err, err
