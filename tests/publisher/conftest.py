"""Fixtures for publisher tests: a mocked send route and clients with fast retry settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aioresponses import aioresponses

import streamkit
from streamkit import AsyncClient, PublisherConfig

from .fakes import BASE, SEND_URL, FakeSendRoute

FAST: dict[str, Any] = {
    "linger": 0.001,
    "backoff": 0.001,
    "max_backoff": 0.01,
    "retry_deadline": 2.0,
}
"""Publisher settings that keep retrying tests quick."""

ClientFactory = Callable[..., AsyncClient]


@pytest.fixture
def route() -> Iterator[FakeSendRoute]:
    """The send route of a mocked server at `BASE`; other routes refuse connections."""
    with aioresponses() as mocked:
        fake = FakeSendRoute()
        mocked.post(SEND_URL, callback=fake.handle, repeat=True)
        yield fake


@pytest.fixture
async def make_client(route: FakeSendRoute) -> AsyncIterator[ClientFactory]:
    """Make clients of the mocked server: ``make_client(close_timeout=..., **publisher_config)``."""
    clients: list[AsyncClient] = []

    def make(close_timeout: float = 2.0, **config: Any) -> AsyncClient:
        client = streamkit.connect(
            BASE,
            timeout=2.0,
            publisher=PublisherConfig(**{**FAST, **config}),
            close_timeout=close_timeout,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> AsyncClient:
    """A client of the mocked server with the `FAST` settings."""
    return make_client()
