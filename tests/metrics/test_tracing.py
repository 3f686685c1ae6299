"""Optional OpenTelemetry spans around api.send and api.receive."""

from __future__ import annotations

import enum
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import streamkit
from streamkit import Event, tracing
from streamkit.testing import ServerHandle


class FakeSpan:
    def __init__(self, name: str, kind: Any, attributes: dict[str, Any]) -> None:
        self.name = name
        self.kind = kind
        self.attributes = dict(attributes)
        self.error: BaseException | None = None

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value


class FakeTracer:
    def __init__(self) -> None:
        self.spans: list[FakeSpan] = []

    @contextmanager
    def start_as_current_span(
        self, name: str, *, kind: Any, attributes: dict[str, Any]
    ) -> Iterator[FakeSpan]:
        span = FakeSpan(name, kind, attributes)
        self.spans.append(span)
        try:
            yield span
        except BaseException as exc:
            span.error = exc
            raise


class SpanKind(enum.Enum):
    INTERNAL = 0
    SERVER = 1
    CLIENT = 2
    PRODUCER = 3
    CONSUMER = 4


@pytest.fixture
def tracer(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTracer]:
    """A stand-in ``opentelemetry.trace`` module with one recording tracer."""
    fake = FakeTracer()
    package = types.ModuleType("opentelemetry")
    trace = types.ModuleType("opentelemetry.trace")
    trace.get_tracer = lambda name, *args: fake  # type: ignore[attr-defined]
    trace.SpanKind = SpanKind  # type: ignore[attr-defined]
    package.trace = trace  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "opentelemetry", package)
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", trace)
    tracing.reset()
    yield fake
    tracing.reset()


@pytest.fixture
def no_opentelemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # import fails
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    tracing.reset()
    yield
    tracing.reset()


async def test_send_and_receive_are_spans(
    tracer: FakeTracer, streamkit_server: ServerHandle
) -> None:
    async with streamkit.connect(streamkit_server.url) as client:
        await client.create_stream("orders")
        await client.create_consumer("orders", "billing")
        await client.send("orders", [Event({"i": i}, key="orders.eu") for i in range(3)])
        received = await client.receive("orders", "billing", batch_size=10)
    assert len(received) == 3
    send, receive = tracer.spans
    assert send.name == "send orders" and send.kind is SpanKind.PRODUCER
    assert send.attributes == {
        "messaging.system": "streamkit",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "orders",
        "messaging.batch.message_count": 3,
    }
    assert receive.name == "receive orders" and receive.kind is SpanKind.CLIENT
    assert receive.attributes["messaging.consumer.group.name"] == "billing"
    assert receive.attributes["messaging.batch.message_count"] == 3


async def test_failures_reach_the_span(tracer: FakeTracer, streamkit_server: ServerHandle) -> None:
    async with streamkit.connect(streamkit_server.url) as client:
        with pytest.raises(streamkit.NotFound):
            await client.send("missing", [Event("x")])
    assert isinstance(tracer.spans[0].error, streamkit.NotFound)


async def test_without_opentelemetry_nothing_changes(
    no_opentelemetry: None, streamkit_server: ServerHandle
) -> None:
    assert not tracing.enabled()
    with tracing.span("x", "producer", {}) as span:
        assert span is None
        tracing.set_attribute(span, "k", 1)  # a no-op
    async with streamkit.connect(streamkit_server.url) as client:
        await client.create_stream("orders")
        acks = await client.send("orders", [Event("x")])
    assert acks[0].seq == 1


async def test_with_the_real_sdk(
    streamkit_server: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    otel_trace = pytest.importorskip("opentelemetry.trace")
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    # As if the application had installed this provider (the global one is set-once).
    monkeypatch.setattr(otel_trace, "get_tracer", lambda name, *_: provider.get_tracer(name))
    tracing.reset()
    try:
        async with streamkit.connect(streamkit_server.url) as client:
            await client.create_stream("orders")
            await client.send("orders", [Event("x")])
    finally:
        tracing.reset()
    (span,) = exporter.get_finished_spans()
    assert span.name == "send orders"
    assert span.kind is otel_trace.SpanKind.PRODUCER
    assert span.attributes["messaging.destination.name"] == "orders"
