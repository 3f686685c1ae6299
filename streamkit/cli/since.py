"""``--since``: how far back a command starts, as a duration (``10m``) or a timestamp."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from streamkit.protocol.wire import parse_time

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([smhdw]))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The moment ``text`` names: a duration before ``now`` (``90s``, ``10m``, ``1h30m``,
    ``2d``, ``1w``) or an RFC 3339 timestamp with an offset. ``ValueError`` otherwise."""
    value = text.strip().lower()
    if _DURATION.fullmatch(value):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(value))
        return (now or datetime.now(timezone.utc)) - timedelta(seconds=seconds)
    when = parse_time(text)
    if when is None:
        raise ValueError(
            f"{text!r} is neither a duration (90s, 10m, 1h30m, 2d) nor an RFC 3339 "
            "timestamp with an offset (2026-01-02T03:04:05Z)"
        )
    return when
