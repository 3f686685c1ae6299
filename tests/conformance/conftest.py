"""The conformance suite: every engine runs these tests unchanged, over HTTP.

``engine`` is parametrized over :data:`ENGINES`; each test gets a fresh
server (SQLite: a new database file; JetStream: its own subject prefix, hence
its own JetStream stream names, on one session-wide ``nats-server -js``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from streamkit.server.engines import create_store
from streamkit.server.runner import start_server
from streamkit.server.store.base import Store
from tests.http_api import Api
from tests.nats_server import NatsServer, require_binary

from .helpers import Engine

ENGINES = ["sqlite", "jetstream"]


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One JetStream server for the whole session."""
    server = NatsServer(binary=require_binary(), store_dir=tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=ENGINES)
def engine_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Store]:
    """(engine name, a not yet opened store)."""
    name: str = request.param
    if name == "sqlite":
        return name, create_store("sqlite", db=tmp_path / "streamkit.db")
    nats: NatsServer = request.getfixturevalue("nats_server")
    prefix = "t" + uuid.uuid4().hex[:12]
    return name, create_store("jetstream", nats_urls=nats.url, nats_prefix=prefix)


@pytest_asyncio.fixture
async def engine(engine_store: tuple[str, Store]) -> AsyncIterator[Engine]:
    """A server over the engine on a free loopback port."""
    name, store = engine_store
    running = await start_server(store)
    try:
        yield Engine(name=name, url=running.url, store=store)
    finally:
        if name == "jetstream":  # keep the shared nats-server small
            with contextlib.suppress(Exception):
                for stream in await store.list_streams():
                    await store.delete_stream(stream.id)
        await running.close()


@pytest_asyncio.fixture
async def api(engine: Engine) -> AsyncIterator[Api]:
    """A JSON client of the engine's server."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield Api(session, engine.url, engine.name)
