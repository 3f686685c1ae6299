"""Every script in examples/ runs against the test server and ends on its own."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from streamkit.client import AsyncClient
from streamkit.testing import ServerHandle
from tests.chromium import require_chromium

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIMEOUT = 30.0


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` under a private module name."""
    spec = importlib.util.spec_from_file_location(
        f"streamkit_example_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def run(name: str, url: str, **options: Any) -> Any:
    return await asyncio.wait_for(load(name).main(url, **options), TIMEOUT)


async def test_quickstart(
    streamkit_server: ServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("quickstart", streamkit_server.url) == [1, 2, 3]
    out = capsys.readouterr().out
    assert "billing orders.eu.1: {'order': 1, 'total': 9.5}" in out
    assert "newest: 3 orders." in out  # events of different keys may be stored in any order


async def test_quickstart_runs_again_on_the_same_server(streamkit_server: ServerHandle) -> None:
    await run("quickstart", streamkit_server.url)
    assert await run("quickstart", streamkit_server.url) == [4, 5, 6]


async def test_publish_callbacks(streamkit_server: ServerHandle) -> None:
    acked, nacked = await run("publish_callbacks", streamkit_server.url, readings=4)
    assert sorted(ack.seq for ack in acked) == [1, 2, 3, 4]
    assert [nack.code for nack in nacked] == ["not_found"]


async def test_competing_workers(streamkit_server: ServerHandle) -> None:
    done = await run("competing_workers", streamkit_server.url, jobs=45, workers=3)
    assert sum(done.values()) == 45
    assert len(done) >= 2, done  # the work was shared


async def test_catch_up_projection(
    streamkit_server: ServerHandle, streamkit_client: AsyncClient
) -> None:
    balances = await run("catch_up_projection", streamkit_server.url)
    assert balances == {"alice": 75, "bob": 30, "carol": 75}
    assert await streamkit_client.list_streams() == []  # it cleans up after itself


async def test_sse_tail(streamkit_server: ServerHandle) -> None:
    assert await run("sse_tail", streamkit_server.url, count=10) == [0, 2, 4, 6, 8]


async def test_aiohttp_service(
    streamkit_server: ServerHandle, streamkit_client: AsyncClient
) -> None:
    recent = await run("aiohttp_service", streamkit_server.url, orders=3)
    assert [r["key"] for r in recent] == ["orders.eu.3", "orders.us.2", "orders.eu.1"]
    assert recent[0]["order"] == {"id": 3, "region": "eu", "total": 30.0}
    assert (await streamkit_client.get_stream("orders")).message_count == 3


async def test_demo(streamkit_server: ServerHandle, capsys: pytest.CaptureFixture[str]) -> None:
    await asyncio.wait_for(load("demo").run(streamkit_server.url), TIMEOUT)
    assert "newest two, read backward: [5, 4]" in capsys.readouterr().out


async def test_dashboard_screenshot(tmp_path: Path) -> None:
    require_chromium()
    out = await asyncio.wait_for(
        load("dashboard_screenshot").main(tmp_path / "shot.png", seconds=2, shot_at=1.5), 60
    )
    png = out.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 5000  # a drawn page, not an empty image
