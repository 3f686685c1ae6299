"""A strict little reader of the Prometheus text format, to check what /metrics serves."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    name: str
    help: str = ""
    kind: str = "untyped"
    samples: dict[Labels, float] = field(default_factory=dict)
    series: dict[str, dict[Labels, float]] = field(default_factory=dict)


def _labels(raw: str) -> Labels:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(raw):
        m = _LABEL.match(raw, pos)
        assert m, f"bad labels {raw!r} at {pos}"
        value = m.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        out.append((m.group(1), value))
        pos = m.end()
    return tuple(out)


def parse_exposition(text: str) -> dict[str, Family]:
    """Families by name; asserts HELP/TYPE precede samples and histograms are coherent."""
    assert text.endswith("\n")
    families: dict[str, Family] = {}
    current: Family | None = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in families, f"{name} twice"
            current = families[name] = Family(name, help_text)
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert current is not None and current.name == name
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped")
            current.kind = kind
            continue
        m = _SAMPLE.match(line)
        assert m, f"bad sample line {line!r}"
        assert current is not None
        name, labels, value = m.group(1), _labels(m.group(3) or ""), float(m.group(4))
        suffix = name[len(current.name) :]
        assert name.startswith(current.name) and suffix in ("", "_bucket", "_sum", "_count")
        if suffix:
            assert current.kind == "histogram"
        current.series.setdefault(suffix, {})[labels] = value
        if not suffix:
            current.samples[labels] = value
    for family in families.values():
        if family.kind == "histogram":
            _check_histogram(family)
        if family.kind == "counter":
            assert family.name.endswith("_total")
    return families


def _check_histogram(family: Family) -> None:
    buckets = family.series.get("_bucket", {})
    by_series: dict[Labels, list[tuple[float, float]]] = {}
    for labels, value in buckets.items():
        le = dict(labels)["le"]
        rest = tuple(kv for kv in labels if kv[0] != "le")
        by_series.setdefault(rest, []).append((math.inf if le == "+Inf" else float(le), value))
    for rest, points in by_series.items():
        points.sort()
        counts = [count for _, count in points]
        assert counts == sorted(counts), f"{family.name}{rest} buckets not cumulative"
        assert points[-1][0] == math.inf
        assert family.series["_count"][rest] == counts[-1]
        assert rest in family.series["_sum"]
