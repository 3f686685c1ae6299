"""pytest plugin: an in-process streamkit server, and a client connected to it.

Registered through the ``pytest11`` entry point, so any project with streamkit
installed gets the fixtures, with no broker to run:

- ``streamkit_server``: a server on a free ``127.0.0.1`` port with a fresh
  SQLite database in ``tmp_path``; yields a `ServerHandle` (``.url``).
- ``streamkit_client``: an `AsyncClient` connected to it, closed after the
  test (closing flushes what the test published and closes its subscriptions).

```python
from streamkit import Event


async def test_billing_sees_orders(streamkit_client):
    await streamkit_client.create_stream("orders")
    await streamkit_client.publish("orders", Event({"id": 7}, key="orders.eu.7"))
    await streamkit_client.flush()
    [event] = await streamkit_client.get("orders")
    assert event.json() == {"id": 7}
```

Both are function-scoped async fixtures (pytest-asyncio). For custom set-ups
(auth, a given database file, a server shared by several tests) use
`run_server` directly.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from streamkit.server.runner import RunningServer, start_server
from streamkit.server.store.base import DEFAULT_DEDUPE_WINDOW_MS
from streamkit.server.store.sqlite.store import SqliteStore

if TYPE_CHECKING:
    from streamkit.client import AsyncClient

try:  # pytest-asyncio is a dev dependency; without it the fixtures are plain async ones
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover
    _async_fixture = pytest.fixture  # type: ignore[assignment]

__all__ = ["ServerHandle", "run_server", "streamkit_client", "streamkit_server"]


@dataclass
class ServerHandle:
    """What the ``streamkit_server`` fixture yields."""

    url: str
    """Base URL of the server, e.g. ``http://127.0.0.1:54321``."""
    store: SqliteStore
    app: web.Application
    api_key: str | None
    db_path: Path


@asynccontextmanager
async def run_server(
    db_path: str | Path | None = None,
    *,
    api_key: str | None = None,
    dedupe_window_ms: int = DEFAULT_DEDUPE_WINDOW_MS,
    **options: Any,
) -> AsyncIterator[ServerHandle]:
    """Run a server on a free loopback port for the duration of the block.

    ``db_path`` defaults to a fresh temporary file. ``options`` go to
    ``streamkit.server.app.create_app`` (e.g. ``max_body_bytes``).
    """
    with tempfile.TemporaryDirectory(prefix="streamkit-") as tmp:
        path = Path(db_path) if db_path is not None else Path(tmp) / "streamkit.db"
        store = SqliteStore(path, dedupe_window_ms=dedupe_window_ms)
        running: RunningServer = await start_server(store, api_key=api_key, **options)
        try:
            yield ServerHandle(
                url=running.url, store=store, app=running.app, api_key=api_key, db_path=path
            )
        finally:
            await running.close()


@_async_fixture
async def streamkit_server(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    """An in-process server on a free 127.0.0.1 port with a temporary database."""
    async with run_server(tmp_path / "streamkit.db") as server:
        yield server


# -- streamkit_client ---------------------------------------------------------
# The client is imported when this fixture runs: a test session that only uses
# the server fixtures never loads it (`import streamkit` resolves names lazily).


@_async_fixture
async def streamkit_client(streamkit_server: ServerHandle) -> AsyncIterator[AsyncClient]:
    """An `AsyncClient` connected to ``streamkit_server``, closed after the test.

    Closing flushes what the test published and closes its subscriptions.
    """
    from streamkit.client import connect

    async with connect(streamkit_server.url, api_key=streamkit_server.api_key) as client:
        yield client
