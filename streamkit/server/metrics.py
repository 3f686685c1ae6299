"""Prometheus metrics, hand-rolled: counters, gauges, histograms and the text format.

Kept dependency-free on purpose (the server needs aiohttp and orjson only).
Everything runs on the event loop's thread, so no locks: handlers add whole
batch sizes (``inc(n)``), never one call per message. `ServerMetrics`
holds the server's metrics; ``render`` writes the Prometheus text exposition
format (version 0.0.4).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
from collections.abc import Iterable, Sequence

from streamkit.server.store.base import ConsumerRecord, Store, StoreError

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Seconds. Reaches 60 s because long-polls (``wait_for``) last that long by design."""

Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Labels, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)

    def _check(self, labels: Labels) -> None:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")

    def _header(self) -> list[str]:
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        return [f"# HELP {self.name} {help_text}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        """The metric's sample lines, without the HELP/TYPE header."""
        raise NotImplementedError

    def render(self) -> str:
        """HELP, TYPE and sample lines, newline-terminated."""
        return "\n".join(self._header() + self.samples()) + "\n"


class Counter(_Metric):
    """A monotonically increasing total."""

    kind = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[Labels, float] = {} if labelnames else {(): 0.0}

    def inc(self, amount: float = 1.0, labels: Labels = ()) -> None:
        """Add ``amount`` (>= 0) to the series with these label values."""
        if amount < 0:
            raise ValueError("a counter only goes up")
        if labels not in self._values:
            self._check(labels)
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, labels: Labels = ()) -> float:
        """The current total of one series (0 when never incremented)."""
        return self._values.get(labels, 0.0)

    def series(self) -> dict[Labels, float]:
        """A copy of every series' current total, by label values."""
        return dict(self._values)

    def samples(self) -> list[str]:
        """One line per series."""
        return [
            f"{self.name}{_labels(self.labelnames, k)} {_number(v)}"
            for k, v in sorted(self._values.items())
        ]


class Gauge(_Metric):
    """A value that goes up and down."""

    kind = "gauge"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[Labels, float] = {} if labelnames else {(): 0.0}

    def set(self, value: float, labels: Labels = ()) -> None:
        """Set one series."""
        if labels not in self._values:
            self._check(labels)
        self._values[labels] = value

    def inc(self, amount: float = 1.0, labels: Labels = ()) -> None:
        """Add ``amount`` (may be negative) to one series."""
        if labels not in self._values:
            self._check(labels)
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def dec(self, amount: float = 1.0, labels: Labels = ()) -> None:
        """Subtract ``amount`` from one series."""
        self.inc(-amount, labels)

    def value(self, labels: Labels = ()) -> float:
        """The current value of one series (0 when never set)."""
        return self._values.get(labels, 0.0)

    def replace(self, values: Iterable[tuple[Labels, float]]) -> None:
        """Drop every series and set these (for gauges computed at scrape time)."""
        fresh: dict[Labels, float] = {} if self.labelnames else {(): 0.0}
        for labels, value in values:
            self._check(labels)
            fresh[labels] = value
        self._values = fresh

    def samples(self) -> list[str]:
        """One line per series."""
        return [
            f"{self.name}{_labels(self.labelnames, k)} {_number(v)}"
            for k, v in sorted(self._values.items())
        ]


class _Series:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size
        self.count = 0
        self.sum = 0.0


class Histogram(_Metric):
    """Observations counted into cumulative ``le`` buckets, with their sum and count."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(name, help, labelnames)
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        if not bounds:
            raise ValueError("a histogram needs at least one finite bucket")
        self.bounds = tuple(bounds)
        self._series: dict[Labels, _Series] = {}

    def observe(self, value: float, labels: Labels = ()) -> None:
        """Count one observation (e.g. a request's duration in seconds)."""
        series = self._series.get(labels)
        if series is None:
            self._check(labels)
            series = self._series[labels] = _Series(len(self.bounds) + 1)
        series.buckets[bisect.bisect_left(self.bounds, value)] += 1
        series.count += 1
        series.sum += value

    def count(self, labels: Labels = ()) -> int:
        """How many observations one series has."""
        series = self._series.get(labels)
        return 0 if series is None else series.count

    def samples(self) -> list[str]:
        """``_bucket`` lines (cumulative, ending with ``+Inf``), then ``_sum`` and ``_count``."""
        lines: list[str] = []
        names = self.labelnames
        for labels, series in sorted(self._series.items()):
            running = 0
            for bound, hits in zip((*self.bounds, math.inf), series.buckets, strict=True):
                running += hits
                le = f'le="{_number(bound)}"'
                lines.append(f"{self.name}_bucket{_labels(names, labels, le)} {running}")
            lines.append(f"{self.name}_sum{_labels(names, labels)} {_number(series.sum)}")
            lines.append(f"{self.name}_count{_labels(names, labels)} {series.count}")
        return lines


class ServerMetrics:
    """Every metric the server exports.

    Counters are bumped by the handlers with batch sizes; the consumer gauges
    (``in_flight``, ``pending``, ``dead``) are computed from the store's
    consumer stats when ``/metrics`` is scraped.
    """

    def __init__(self) -> None:
        self.published = Counter(
            "streamkit_messages_published_total",
            "Messages stored by publish requests (deduplicated retries are not counted).",
        )
        self.delivered = Counter(
            "streamkit_messages_delivered_total",
            "Deliveries handed to consumers by receive (redeliveries included).",
        )
        self.redelivered = Counter(
            "streamkit_messages_redelivered_total",
            "Deliveries of a message the consumer had been given before (delivery_count > 1).",
        )
        self.acked = Counter(
            "streamkit_messages_acked_total",
            "Ack ids accepted by the ack route (unknown or stale ids, which are ignored, count).",
        )
        self.nacked = Counter(
            "streamkit_messages_nacked_total",
            "Ack ids accepted by the nack route (unknown or stale ids, which are ignored, count).",
        )
        self.sse_events = Counter(
            "streamkit_sse_events_sent_total",
            "Messages written to live-tail (server-sent events) connections.",
        )
        self.sse_connections = Gauge(
            "streamkit_sse_connections", "Open live-tail (server-sent events) connections."
        )
        self.storage_degraded = Gauge(
            "streamkit_storage_degraded",
            "1 while the store refuses writes because its disk is full or failing (507), else 0.",
        )
        self.in_flight = Gauge(
            "streamkit_messages_in_flight",
            "Deliveries handed out and not yet acked, nacked or expired, per stream.",
            ["stream"],
        )
        self.pending = Gauge(
            "streamkit_messages_pending",
            "Messages waiting to be delivered to consumers, per stream (summed over consumers).",
            ["stream"],
        )
        self.dead_lettered = Gauge(
            "streamkit_messages_dead_lettered",
            "Messages dead-lettered after max_deliver deliveries, per stream (summed over "
            "consumers; a gauge because deleting a consumer drops its dead letters).",
            ["stream"],
        )
        self.consumers = Gauge(
            "streamkit_consumers", "Consumers, per stream (ephemeral ones included).", ["stream"]
        )
        self.requests = Counter(
            "streamkit_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
        )
        self.latency = Histogram(
            "streamkit_http_request_duration_seconds",
            "Time from a request's arrival to its response, by method and route template "
            "(long-polls include their wait; live tails are not observed).",
            ["method", "route"],
        )
        self.scrape_errors = Counter(
            "streamkit_metrics_store_errors_total",
            "Scrapes whose consumer stats could not be read from the store.",
        )
        self.stream_published = Counter(
            "streamkit_stream_messages_published_total",
            "Messages stored by publish requests, per stream as the request named it.",
            ["stream"],
        )
        self.consumer_acked = Counter(
            "streamkit_consumer_messages_acked_total",
            "Ack ids accepted by the ack route, per stream and consumer as the request named them.",
            ["stream", "consumer"],
        )
        self.consumer_redelivered = Counter(
            "streamkit_consumer_messages_redelivered_total",
            "Redeliveries (delivery_count > 1), per stream and consumer as the request named them.",
            ["stream", "consumer"],
        )

    def all(self) -> list[_Metric]:
        """Every metric, in exposition order."""
        return [
            self.published,
            self.delivered,
            self.redelivered,
            self.acked,
            self.nacked,
            self.sse_events,
            self.sse_connections,
            self.storage_degraded,
            self.in_flight,
            self.pending,
            self.dead_lettered,
            self.consumers,
            self.requests,
            self.latency,
            self.scrape_errors,
            self.stream_published,
            self.consumer_acked,
            self.consumer_redelivered,
        ]

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        return render(self.all())


def render(metrics: Iterable[_Metric]) -> str:
    """Prometheus text format (0.0.4) for ``metrics``."""
    return "".join(m.render() for m in metrics)


async def refresh_store_gauges(store: Store, metrics: ServerMetrics) -> None:
    """Set the per-stream consumer gauges from the store's consumer stats.

    Costs one stats read per consumer, at scrape time only; a stream or consumer
    deleted meanwhile is skipped. When the store cannot answer, the gauges keep
    their last values and ``streamkit_metrics_store_errors_total`` goes up.
    """
    try:
        streams = await store.list_streams()
        per_stream = await asyncio.gather(*(_stream_stats(store, s.id) for s in streams))
    except StoreError as exc:
        log.warning("metrics: could not read consumer stats: %r", exc)
        metrics.scrape_errors.inc()
        return
    in_flight, pending, dead, consumers = [], [], [], []
    for s, records in zip(streams, per_stream, strict=True):
        labels = (s.name,)
        consumers.append((labels, float(len(records))))
        stats = [r.stats for r in records if r.stats is not None]
        in_flight.append((labels, float(sum(st.in_flight for st in stats))))
        pending.append((labels, float(sum(st.pending for st in stats))))
        dead.append((labels, float(sum(st.dead for st in stats))))
    metrics.consumers.replace(consumers)
    metrics.in_flight.replace(in_flight)
    metrics.pending.replace(pending)
    metrics.dead_lettered.replace(dead)


async def _stream_stats(store: Store, stream_id: str) -> list[ConsumerRecord]:
    try:
        listed = await store.list_consumers(stream_id)
    except StoreError:  # deleted since it was listed
        return []
    found = await asyncio.gather(
        *(store.get_consumer(stream_id, c.id) for c in listed), return_exceptions=True
    )
    out: list[ConsumerRecord] = []
    for record in found:
        if isinstance(record, ConsumerRecord):
            out.append(record)
        elif not isinstance(record, StoreError):
            raise record
    return out
