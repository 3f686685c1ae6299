"""Optional OpenTelemetry spans around the client's data-plane calls.

When ``opentelemetry-api`` is importable, `span` starts a span on the
``streamkit`` tracer (what it records depends on the SDK the application
configured; without one the API's no-op tracer makes it nearly free). When it
is not installed, `span` is a shared no-op context manager: no import cost,
no dependency. Names and attributes follow OpenTelemetry's messaging
conventions (``send orders``, ``messaging.destination.name``, ...).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Mapping
from typing import Any

__all__ = ["SYSTEM", "enabled", "reset", "set_attribute", "span"]

SYSTEM = "streamkit"
"""The ``messaging.system`` attribute of every span."""

AttributeValue = str | bool | int | float

_UNSET: Any = object()
_tracer: Any = _UNSET
_kinds: dict[str, Any] = {}
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


def enabled() -> bool:
    """True when opentelemetry-api is importable (spans are started)."""
    return _load() is not None


def reset() -> None:
    """Forget the cached tracer: the next span looks for opentelemetry again (for tests)."""
    global _tracer
    _tracer = _UNSET
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
