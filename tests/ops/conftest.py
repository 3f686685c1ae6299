"""Fixtures for operations tests: a real server over a SQLite file the test can measure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest_asyncio

from streamkit.testing import ServerHandle, run_server
from tests.http_api import Api


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    """An in-process server over ``tmp_path / "streamkit.db"``."""
    async with run_server(tmp_path / "streamkit.db") as handle:
        yield handle


@pytest_asyncio.fixture
async def api(server: ServerHandle) -> AsyncIterator[Api]:
    """A JSON client of ``server``."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield Api(session, server.url)
