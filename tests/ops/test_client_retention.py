"""The client's side of retention: ``create_stream(max_age=, max_bytes=)``, ``update_stream``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streamkit import Event
from streamkit.client import AsyncClient
from streamkit.errors import NotFound, ValidationError


async def test_create_stream_with_limits(streamkit_client: AsyncClient) -> None:
    stream = await streamkit_client.create_stream(
        "orders", max_age=timedelta(minutes=5), max_bytes=10**6, retain_up_to=1000
    )
    assert stream.max_age == timedelta(minutes=5)
    assert stream.raw["max_age_ms"] == 300_000
    assert (stream.max_bytes, stream.retain_up_to, stream.retain_at_least) == (10**6, 1000, None)
    seconds = await streamkit_client.create_stream("metrics", max_age=2.5)
    assert seconds.max_age == timedelta(milliseconds=2500)


async def test_update_stream_changes_only_what_it_names(streamkit_client: AsyncClient) -> None:
    await streamkit_client.create_stream("orders", max_bytes=10**6, max_age=60)
    await streamkit_client.publish("orders", [Event(f"e{i}", key="orders.eu") for i in range(20)])
    await streamkit_client.flush()
    updated = await streamkit_client.update_stream("orders", retain_up_to=5, max_age=None)
    assert (updated.retain_up_to, updated.max_age, updated.max_bytes) == (5, None, 10**6)
    got = await streamkit_client.get("orders", max_count=100)
    assert [e.seq for e in got] == list(range(16, 21))
    stream = await streamkit_client.get_stream("orders")
    assert stream.message_count == 5


async def test_update_stream_errors(streamkit_client: AsyncClient) -> None:
    with pytest.raises(ValueError, match="at least one"):
        await streamkit_client.update_stream("orders")
    with pytest.raises(ValueError, match="positive"):
        await streamkit_client.update_stream("orders", max_age=timedelta(0))
    with pytest.raises(NotFound):
        await streamkit_client.update_stream("orders", retain_up_to=5)
    await streamkit_client.create_stream("orders")
    with pytest.raises(ValidationError) as caught:
        await streamkit_client.update_stream("orders", max_bytes=0)
    assert "max_bytes" in caught.value.validation_errors
