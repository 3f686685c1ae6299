"""Fixtures for JetStream-engine tests: a fresh nats-server per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.nats_server import NatsServer, require_binary


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A JetStream server of the test's own (stopped afterwards)."""
    server = NatsServer(binary=require_binary(), store_dir=tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()
