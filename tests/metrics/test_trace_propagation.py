"""Trace propagation with the real OpenTelemetry SDK: the publisher puts the publishing
caller's W3C trace context in each event's headers, and a subscription starts a consumer
span per event handed out, a child of and linked to that context, ended on settling."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

import streamkit
from streamkit import Event, tracing
from streamkit.testing import ServerHandle

pytestmark = pytest.mark.timeout(30)

otel_trace = pytest.importorskip("opentelemetry.trace")
sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
sdk_export = pytest.importorskip("opentelemetry.sdk.trace.export")
in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")


class Traces:
    """The application's tracer and what the SDK exported."""

    def __init__(self, provider: Any, exporter: Any) -> None:
        self.tracer = provider.get_tracer("app")
        self.exporter = exporter

    def finished(self, name: str) -> list[Any]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]


@pytest.fixture
def traces(monkeypatch: pytest.MonkeyPatch) -> Iterator[Traces]:
    exporter = in_memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(sdk_export.SimpleSpanProcessor(exporter))
    # As if the application had installed this provider (the global one is set-once).
    monkeypatch.setattr(otel_trace, "get_tracer", lambda name, *_: provider.get_tracer(name))
    tracing.reset()
    yield Traces(provider, exporter)
    tracing.reset()


def traceparent(span: Any) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


async def test_publish_carries_the_callers_context(
    traces: Traces, streamkit_server: ServerHandle
) -> None:
    async with streamkit.connect(streamkit_server.url) as client:
        await client.create_stream("orders")
        # Two callers in two traces; the first one's publish starts the lanes' tasks.
        with traces.tracer.start_as_current_span("checkout a") as a:
            first = Event({"n": 1}, key="orders.eu")
            await client.publish("orders", first)
        with traces.tracer.start_as_current_span("checkout b") as b:
            second = Event({"n": 2}, key="orders.eu")
            await client.publish("orders", second)
        untraced = Event({"n": 3}, key="orders.eu")
        await client.publish("orders", untraced)
        await client.flush()
        with traces.tracer.start_as_current_span("direct send") as c:
            await client.send("orders", [Event({"n": 4})])
        stored = await client.get("orders")

    assert [e.headers.get("traceparent") for e in stored] == [
        traceparent(a),
        traceparent(b),
        None,  # no span was current
        traceparent(c),
    ]
    # The batch's send span belongs to no caller's trace.
    for send in traces.finished("send orders")[:-1]:
        assert send.parent is None


async def test_a_consumer_span_per_event_linked_to_the_producer(
    traces: Traces, streamkit_server: ServerHandle
) -> None:
    async with streamkit.connect(streamkit_server.url) as client:
        await client.create_stream("orders")
        await client.create_consumer("orders", "billing")
        producers = []
        for n in range(3):
            with traces.tracer.start_as_current_span(f"order {n}") as producer:
                producers.append(producer)
                await client.publish("orders", Event({"n": n}))
        await client.publish("orders", Event({"n": 3}))  # published outside any span
        await client.flush()

        handled = 0
        async with client.subscribe("orders", consumer="billing", wait_for=0.2) as sub:
            async for event in sub:
                assert event.delivery is not None and event.delivery.span is not None
                assert event.delivery.span.is_recording()  # open while the handler works
                if event.json()["n"] == 1:
                    await event.nack()
                else:
                    await event.ack()
                assert not event.delivery.span.is_recording()  # settling ended it
                handled += 1
                if handled == 5:  # four, and the nacked one again
                    break

    spans = traces.finished("process orders")
    assert len(spans) == 5
    by_parent: dict[int | None, list[Any]] = {}
    for span in spans:
        assert span.kind is otel_trace.SpanKind.CONSUMER
        assert span.attributes["messaging.consumer.group.name"] == "billing"
        assert span.attributes["messaging.operation.type"] == "process"
        parent = None if span.parent is None else span.parent.span_id
        by_parent.setdefault(parent, []).append(span)
    for n, producer in enumerate(producers):
        context = producer.get_span_context()
        (first, *again) = by_parent[context.span_id]
        assert len(again) == (1 if n == 1 else 0)  # the nacked one was delivered twice
        assert first.context.trace_id == context.trace_id
        assert [link.context.span_id for link in first.links] == [context.span_id]
    (orphan,) = by_parent[None]  # the event published outside any span: a root, no link
    assert list(orphan.links) == []


async def test_closing_ends_the_spans_of_unsettled_events(
    traces: Traces, streamkit_server: ServerHandle
) -> None:
    async with streamkit.connect(streamkit_server.url) as client:
        await client.create_stream("orders")
        await client.create_consumer("orders", "billing")
        with traces.tracer.start_as_current_span("order"):
            await client.publish("orders", Event({"n": 0}))
        await client.flush()
        async with client.subscribe("orders", consumer="billing", wait_for=0.2) as sub:
            async for event in sub:
                span = event.delivery.span if event.delivery else None
                break  # not settled: the close gives it back
    assert span is not None and not span.is_recording()
    assert len(traces.finished("process orders")) == 1


async def test_without_opentelemetry_no_headers_and_no_spans(
    monkeypatch: pytest.MonkeyPatch, streamkit_server: ServerHandle
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # import fails
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.propagate", None)
    tracing.reset()
    try:
        assert tracing.context_headers() == {}
        assert tracing.consumer_span("process x", {}, {}) is None
        async with streamkit.connect(streamkit_server.url) as client:
            await client.create_stream("orders")
            await client.create_consumer("orders", "billing")
            event = Event({"n": 0})
            await client.publish("orders", event)
            await client.flush()
            assert event.headers == {}
            async with client.subscribe("orders", consumer="billing", wait_for=0.2) as sub:
                async for received in sub:
                    assert received.headers == {}
                    assert received.delivery is not None and received.delivery.span is None
                    await received.ack()
                    break
    finally:
        tracing.reset()


async def test_batches_get_a_consumer_span_per_event(
    traces: Traces, streamkit_server: ServerHandle
) -> None:
    async with streamkit.connect(streamkit_server.url) as client:
        await client.create_stream("orders")
        await client.create_consumer("orders", "billing")
        with traces.tracer.start_as_current_span("order"):
            await client.publish("orders", [Event({"n": n}) for n in range(3)])
        await client.flush()
        async with client.subscribe("orders", consumer="billing", wait_for=0.2) as sub:
            async for batch in sub.batches():
                spans = [event.delivery.span for event in batch if event.delivery is not None]
                assert len(spans) == 3 and all(span.is_recording() for span in spans)
                await batch.ack()
                assert not any(span.is_recording() for span in spans)
                break
    assert len(traces.finished("process orders")) == 3


async def test_with_the_api_but_no_tracer_provider_no_consumer_spans_are_started(
    streamkit_server: ServerHandle,
) -> None:
    # The API alone (the default proxy provider, no SDK installed): every span would
    # be a no-op, so the per-event ones are not started at all.
    tracing.reset()
    if not isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider):
        pytest.skip("a global tracer provider was installed in this session")
    assert tracing.enabled() and not tracing.recording()
    async with streamkit.connect(streamkit_server.url) as client:
        await client.create_stream("orders")
        await client.create_consumer("orders", "billing")
        await client.publish("orders", Event({"n": 0}))
        await client.flush()
        async with client.subscribe("orders", consumer="billing", wait_for=0.2) as sub:
            async for event in sub:
                assert event.delivery is not None and event.delivery.span is None
                await event.ack()
                break


def test_a_tracer_provider_installed_later_turns_recording_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracing.reset()
    if not isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider):
        pytest.skip("a global tracer provider was installed in this session")
    try:
        assert not tracing.recording()  # streamkit now holds the API's proxy tracer
        provider = sdk_trace.TracerProvider()
        # As trace.set_tracer_provider would (the global one is set-once).
        monkeypatch.setattr(otel_trace, "get_tracer_provider", lambda: provider)
        assert tracing.recording()  # the proxy follows the provider installed later
    finally:
        tracing.reset()
