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

Both are function-scoped async fixtures: they need pytest-asyncio
(``pip install 'aiostreamkit[testing]'``), in either of its modes. In strict
mode (its default) an ``async def`` test that uses them is marked
``@pytest.mark.asyncio`` by this plugin, so the test above runs as written
with no configuration. Without pytest-asyncio they fail with one message
saying what to install. For custom set-ups (auth, a given database file, a
server shared by several tests) use `run_server` directly.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import AsyncIterator, Generator
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

try:  # the [testing] extra; without it `pytest_fixture_setup` below says what to install
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover
    _async_fixture = pytest.fixture  # type: ignore[assignment]

__all__ = ["ServerHandle", "run_server", "streamkit_client", "streamkit_server"]

FIXTURES = ("streamkit_server", "streamkit_client")
"""The plugin's async fixtures."""

MISSING_PYTEST_ASYNCIO = (
    "streamkit's fixtures (streamkit_server, streamkit_client) need pytest-asyncio: "
    "pip install 'aiostreamkit[testing]'"
)


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


# -- Hooks: the fixtures work in a project with no configuration ----------------


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, Any, None]:
    """Mark ``async def`` tests that use the fixtures ``@pytest.mark.asyncio``.

    In pytest-asyncio's strict mode an unmarked coroutine test is not run by it;
    one that asks for an asyncio fixture of ours can only mean asyncio. This
    wrapper is the innermost (``trylast``), so pytest-asyncio's own wrapper sees
    the mark when it turns the test into one it runs. Auto mode marks them anyway.
    """
    outcome = yield
    collected = outcome.get_result()
    if not collected or not inspect.iscoroutinefunction(obj):
        return
    for item in collected if isinstance(collected, list) else [collected]:
        if (
            isinstance(item, pytest.Function)
            and item.get_closest_marker("asyncio") is None
            and any(name in item.fixturenames for name in FIXTURES)
        ):
            item.add_marker(pytest.mark.asyncio)


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> None:
    """Fail the fixtures with one line saying what to install when pytest-asyncio
    is missing (or disabled with ``-p no:asyncio``), instead of pytest's own
    complaint about an async fixture."""
    if fixturedef.argname in FIXTURES and not request.config.pluginmanager.has_plugin("asyncio"):
        pytest.fail(MISSING_PYTEST_ASYNCIO, pytrace=False)
