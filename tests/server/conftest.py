"""Fixtures for server tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from streamkit.testing import ServerHandle
from tests.http_api import Api
from tests.server_process import ServerProcess


@pytest_asyncio.fixture
async def api(streamkit_server: ServerHandle) -> AsyncIterator[Api]:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield Api(session, streamkit_server.url)


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "streamkit.db")
    try:
        yield server
    finally:
        if server.proc is not None:
            server.stop()
