"""Typed payloads and trace context through each engine, with the streamkit client: the
JSON of a model, its mimetype and the ``traceparent`` / ``tracestate`` headers are stored
and delivered as they were published."""

from __future__ import annotations

import pydantic
import pytest

import streamkit
from streamkit import Event, tracing

from .helpers import Engine

otel_trace = pytest.importorskip("opentelemetry.trace")
sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
sdk_export = pytest.importorskip("opentelemetry.sdk.trace.export")
in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")


class Order(pydantic.BaseModel):
    id: int
    total: float


async def test_a_traced_model_round_trips(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = in_memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(sdk_export.SimpleSpanProcessor(exporter))
    monkeypatch.setattr(otel_trace, "get_tracer", lambda name, *_: provider.get_tracer(name))
    tracing.reset()
    try:
        async with streamkit.connect(engine.url) as client:
            await client.create_stream("orders")
            await client.create_consumer("orders", "billing")
            sent = Event(Order(id=7, total=12.5), key="orders.eu.7")
            with provider.get_tracer("app").start_as_current_span("checkout") as checkout:
                sent.headers["tracestate"] = "vendor=value"
                await client.publish("orders", sent)
            await client.flush()
            assert "traceparent" in sent.headers

            (read,) = await client.get("orders", model=Order)
            async with client.subscribe(
                "orders", consumer="billing", model=Order, wait_for=0.5
            ) as subscription:
                async for delivered in subscription:
                    await delivered.ack()
                    break
    finally:
        tracing.reset()
    for event in (read, delivered):
        assert event.decode() == Order(id=7, total=12.5)
        assert event.mimetype == "application/json"
        assert event.headers["traceparent"] == sent.headers["traceparent"]
        assert event.headers["tracestate"] == "vendor=value"
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "process orders"]
    assert span.parent is not None
    assert span.parent.span_id == checkout.get_span_context().span_id
    assert [link.context.span_id for link in span.links] == [span.parent.span_id]
