"""Optional OpenTelemetry spans around the client's data-plane calls.

When ``opentelemetry-api`` is importable, `span` starts a span on the
``streamkit`` tracer (what it records depends on the SDK the application
configured; without one the API's no-op tracer makes it nearly free). When it
is not installed, `span` is a shared no-op context manager: no import cost,
no dependency. Names and attributes follow OpenTelemetry's messaging
conventions (``send orders``, ``messaging.destination.name``, ...).

Trace propagation: `context_headers` gives the W3C ``traceparent`` /
``tracestate`` of the context current where an event is published (the
publisher puts them in the event's headers), and `consumer_span` starts the
span of a received event as a child of, and linked to, that context.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = [
    "SYSTEM",
    "consumer_span",
    "context_headers",
    "enabled",
    "recording",
    "reset",
    "set_attribute",
    "span",
]

SYSTEM = "streamkit"
"""The ``messaging.system`` attribute of every span."""

AttributeValue = str | bool | int | float

_UNSET: Any = object()
_tracer: Any = _UNSET
_kinds: dict[str, Any] = {}
_propagation: Any = _UNSET
"""(``opentelemetry.propagate``, ``.trace``, ``.context``), or None: no propagation."""
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
_NOOP: contextlib.nullcontext[None] = contextlib.nullcontext()


def _load() -> Any:
    """The streamkit tracer, or None when opentelemetry-api is not installed (cached)."""
    global _tracer
    if _tracer is _UNSET:
        try:
            trace = importlib.import_module("opentelemetry.trace")
        except ImportError:
            _tracer = None
        else:
            _tracer = trace.get_tracer("streamkit")
            _kinds.update(
                producer=trace.SpanKind.PRODUCER,
                consumer=trace.SpanKind.CONSUMER,
                client=trace.SpanKind.CLIENT,
            )
    return _tracer


def _load_propagation() -> Any:
    """The modules propagation needs, or None without a full opentelemetry-api (cached)."""
    global _propagation
    if _propagation is _UNSET:
        if _load() is None:
            _propagation = None
        else:
            try:
                _propagation = (
                    importlib.import_module("opentelemetry.propagate"),
                    importlib.import_module("opentelemetry.trace"),
                    importlib.import_module("opentelemetry.context"),
                )
            except ImportError:
                _propagation = None
    return _propagation


def enabled() -> bool:
    """True when opentelemetry-api is importable (spans are started)."""
    return _load() is not None


def recording() -> bool:
    """True when a span started now can be recorded: opentelemetry-api is importable and
    the application installed a tracer provider (an SDK), not only the API's default.

    Without one every span is a no-op that still costs a few microseconds to start; the
    per-event consumer spans are skipped then (checked once per received batch, so a
    provider installed later is picked up).
    """
    tracer = _load()
    if tracer is None:
        return False
    trace = sys.modules["opentelemetry.trace"]  # imported by _load
    if isinstance(tracer, trace.NoOpTracer):
        return False
    if isinstance(tracer, trace.ProxyTracer):  # follows the global provider, once set
        provider = trace.get_tracer_provider()
        return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))
    return True


def reset() -> None:
    """Forget the cached tracer: the next span looks for opentelemetry again (for tests)."""
    global _tracer, _propagation
    _tracer = _UNSET
    _propagation = _UNSET
    _kinds.clear()


def span(
    name: str, kind: str, attributes: Mapping[str, AttributeValue]
) -> contextlib.AbstractContextManager[Any]:
    """A context manager around one operation: a current span, or a no-op.

    ``kind`` is ``"producer"``, ``"consumer"`` or ``"client"``. The span records
    an exception that escapes the block and marks itself as failed. Entering it
    gives the span (or None), for `set_attribute`.
    """
    tracer = _load()
    if tracer is None:
        return _NOOP
    return tracer.start_as_current_span(  # type: ignore[no-any-return]
        name, kind=_kinds[kind], attributes=dict(attributes)
    )


def set_attribute(current: Any, key: str, value: AttributeValue) -> None:
    """Set an attribute on a span entered with `span` (no-op when tracing is off)."""
    if current is not None:
        current.set_attribute(key, value)


def context_headers() -> Mapping[str, str]:
    """The current trace context as message headers (``traceparent``, ``tracestate``, as
    the application's propagator writes them); empty without a current span or without
    OpenTelemetry. Call it where the event is published: the context is the caller's."""
    propagation = _load_propagation()
    if propagation is None or not propagation[2].get_current():
        return _NO_HEADERS  # no OpenTelemetry, or an empty context: nothing to carry
    carrier: dict[str, str] = {}
    propagation[0].inject(carrier)
    return carrier


def consumer_span(
    name: str, headers: Mapping[str, str], attributes: Mapping[str, AttributeValue]
) -> Any:
    """Start (without making it current) the consumer span of one received event.

    The span is a child of the producer's context found in ``headers`` and
    carries a link to it; without one it is a child of the current context.
    The caller ends it. None when tracing is off.
    """
    tracer = _load()
    propagation = _load_propagation()
    if tracer is None or propagation is None:
        return None
    propagate, trace, _ = propagation
    extracted = propagate.extract(headers)
    producer = trace.get_current_span(extracted).get_span_context()
    if producer.is_valid:
        context, links = extracted, [trace.Link(producer)]
    else:
        context, links = None, []
    return tracer.start_span(
        name, context=context, kind=_kinds["consumer"], attributes=dict(attributes), links=links
    )
