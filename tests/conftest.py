"""Fixtures every test folder may use."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from streamkit.testing import ServerHandle
from tests.http_api import Api


@pytest_asyncio.fixture
async def api(streamkit_server: ServerHandle) -> AsyncIterator[Api]:
    """A JSON client for the HTTP API of ``streamkit_server``."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield Api(session, streamkit_server.url)
