"""The hand-rolled Prometheus metrics and their text exposition."""

from __future__ import annotations

import pytest

from streamkit.server.metrics import Counter, Gauge, Histogram, ServerMetrics, render

from .exposition import parse_exposition


def test_counter_renders_help_type_and_value() -> None:
    c = Counter("jobs_total", "Jobs done.")
    c.inc()
    c.inc(41)
    assert c.render() == "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total 42\n"


def test_counter_never_goes_down() -> None:
    with pytest.raises(ValueError):
        Counter("c_total", "c").inc(-1)


def test_labels_are_checked_sorted_and_escaped() -> None:
    c = Counter("req_total", "Requests.", ["route", "status"])
    c.inc(1, ("/a", "200"))
    c.inc(2, ('/b "quoted"\\path\n', "500"))
    with pytest.raises(ValueError):
        c.inc(1, ("/a",))
    assert c.samples() == [
        'req_total{route="/a",status="200"} 1',
        'req_total{route="/b \\"quoted\\"\\\\path\\n",status="500"} 2',
    ]
    assert Counter("empty_total", "No series yet.", ["x"]).samples() == []


def test_gauge_set_inc_dec_and_replace() -> None:
    g = Gauge("open", "Open things.")
    g.inc(3)
    g.dec()
    assert g.value() == 2
    g.set(0.25)
    assert g.samples() == ["open 0.25"]
    labelled = Gauge("per", "Per stream.", ["stream"])
    labelled.set(5, ("gone",))
    labelled.replace([(("orders",), 1.0)])
    assert labelled.samples() == ['per{stream="orders"} 1']


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    h = Histogram("lat_seconds", "Latency.", ["route"], buckets=[0.1, 1, 0.5])
    for value in (0.05, 0.1, 0.3, 0.5, 2.0):
        h.observe(value, ("/x",))
    assert h.samples() == [
        'lat_seconds_bucket{route="/x",le="0.1"} 2',  # 0.1 itself is <= 0.1
        'lat_seconds_bucket{route="/x",le="0.5"} 4',
        'lat_seconds_bucket{route="/x",le="1"} 4',
        'lat_seconds_bucket{route="/x",le="+Inf"} 5',
        'lat_seconds_sum{route="/x"} 2.95',
        'lat_seconds_count{route="/x"} 5',
    ]
    assert h.count(("/x",)) == 5 and h.count(("/y",)) == 0


def test_histogram_needs_a_finite_bucket() -> None:
    with pytest.raises(ValueError):
        Histogram("h", "h", buckets=[float("inf")])


def test_server_metrics_exposition_is_well_formed() -> None:
    m = ServerMetrics()
    m.published.inc(1000)
    m.requests.inc(1, ("POST", "/api/streams/{stream}/messages", "200"))
    m.latency.observe(0.003, ("POST", "/api/streams/{stream}/messages"))
    m.in_flight.replace([(("orders",), 3.0)])
    families = parse_exposition(m.render())
    assert families["streamkit_messages_published_total"].samples == {(): 1000.0}
    assert families["streamkit_messages_in_flight"].samples == {(("stream", "orders"),): 3.0}
    assert families["streamkit_http_request_duration_seconds"].kind == "histogram"
    names = set(families)
    assert {
        "streamkit_messages_published_total",
        "streamkit_messages_delivered_total",
        "streamkit_messages_acked_total",
        "streamkit_messages_nacked_total",
        "streamkit_messages_redelivered_total",
        "streamkit_messages_dead_lettered",
        "streamkit_messages_in_flight",
        "streamkit_http_requests_total",
        "streamkit_http_request_duration_seconds",
    } <= names


def test_render_joins_families() -> None:
    a, b = Counter("a_total", "A."), Gauge("b", "B.")
    assert render([a, b]) == a.render() + b.render()
