"""Retention on the JetStream engine: the limits land in the stream's JetStream config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamkit.server.store.base import StoreInvalid, StreamOptions
from streamkit.server.store.jetstream.store import JetStreamStore
from tests.nats_server import NatsServer, require_binary

MS = 1_000_000
"""Nanoseconds per millisecond (JetStream's durations)."""


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(binary=require_binary(), store_dir=tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _config(store: JetStreamStore, name: str) -> dict[str, Any]:
    info = await store.conn.api(f"STREAM.INFO.{store.naming.js_stream(name)}")
    config: dict[str, Any] = info["config"]
    return config


async def test_limits_map_to_the_stream_config(nats_server: NatsServer) -> None:
    store = JetStreamStore(nats_server.url, dedupe_window_ms=120_000)
    await store.open()
    try:
        options = StreamOptions(retain_up_to=100, max_bytes=10**6, max_storage_gb=1, max_age_ms=500)
        await store.create_stream("orders", options)
        config = await _config(store, "orders")
        assert (config["max_msgs"], config["max_bytes"]) == (100, 10**6)
        assert config["max_age"] == 500 * MS
        assert config["duplicate_window"] == 500 * MS  # JetStream: never above max_age

        record = await store.update_stream(
            "orders", {"retain_up_to": None, "max_storage_gb": 2, "max_bytes": None}
        )
        assert record.options.retain_up_to is None and record.options.max_storage_gb == 2
        config = await _config(store, "orders")
        assert (config["max_msgs"], config["max_bytes"]) == (-1, 2 * 1024**3)
        assert config["max_age"] == 500 * MS

        await store.update_stream("orders", {"max_age_ms": None})
        config = await _config(store, "orders")
        assert config["max_age"] == 0 and config["duplicate_window"] == 120_000 * MS
        # The options survive in the metadata: a fresh read sees them.
        again = await store.get_stream("orders")
        assert again.options == StreamOptions(max_storage_gb=2)
    finally:
        await store.close()


async def test_the_largest_limits_accepted(nats_server: NatsServer) -> None:
    """An age beyond int64 nanoseconds is capped; a byte limit beyond what JetStream can
    store is a clear error naming the field, and nothing is created or changed."""
    store = JetStreamStore(nats_server.url)
    await store.open()
    try:
        await store.create_stream("old", StreamOptions(max_age_ms=2**62, retain_up_to=2**62))
        assert (await _config(store, "old"))["max_age"] == 2**63 - 1
        with pytest.raises(StoreInvalid) as refused:
            await store.create_stream("huge", StreamOptions(max_storage_gb=2**62))
        assert refused.value.errors == {
            "max_storage_gb": ["is more than the JetStream server can store"]
        }
        assert [s.name for s in await store.list_streams()] == ["old"]
        with pytest.raises(StoreInvalid) as refused:
            await store.update_stream("old", {"max_bytes": 2**62})
        assert "max_bytes" in refused.value.errors
        assert (await store.get_stream("old")).options.max_bytes is None
    finally:
        await store.close()
