"""The facts of the wire format both sides hold to: limits, header names, media types.

The server enforces these limits and documents them in its OpenAPI document;
the client batches, chunks and checks against the same numbers.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Literal

MAX_BATCH = 1000
"""The most messages in one publish request, one read page or one receive."""

MAX_ACK_IDS = 1000
"""The most ack ids in one ack, nack or extend request (a receive's worth)."""

MAX_MESSAGE_BYTES = 1024 * 1024
"""The largest ``data`` one message may carry, in UTF-8 bytes of its wire text (base64
text for binary payloads). The server's default limit (``--max-message-bytes``) and
the client's check on `Event`."""

MAX_REASON_CHARS = 1024
"""The longest ``reason`` a nack may carry (why the handler failed); the client cuts
longer ones to this, the server refuses them."""

DEFAULT_RECEIVE_BATCH = 10
"""``batch_size`` of a receive that does not say."""

DEFAULT_PAGE_LIMIT = 100
"""``limit`` of a read that does not say."""

JSON = "application/json"
"""The media type of every request and response body but the live tail's."""

EVENT_STREAM = "text/event-stream"
"""The media type of the live tail (server-sent events)."""

HEARTBEAT_HEADER = "Streamkit-Heartbeat-Ms"
"""Response header of a live tail: its keepalive interval, for the reader's idle timeout."""

ACKS_PARAM = "acks"
"""Query parameter of a publish asking for its acks in another form."""
ACK_RUNS = "runs"
"""``?acks=runs``: the publish answers ``"ack_runs": [[first_seq, count, committed], ...]``,
runs of the request's messages in order, instead of an object per message."""

DELIVERIES_PARAM = "deliveries"
"""Query parameter of a receive asking for its deliveries in another form."""
DELIVERY_COLUMNS = "columns"
"""``?deliveries=columns``: the receive answers ``{"data": {"stream_id": ..., "ack_id":
[...], "delivery_count": [...], "seq": [...], "key": [...], "data": [...],
"inserted_at": [...]}}``, a list per field with one entry per delivery, in order,
instead of an object per delivery (and one per message). ``id``, ``headers`` and
``encoding`` are lists too when a delivery of the batch has one (null for the others),
absent otherwise. Far fewer objects to build on both sides, and no key repeated."""

CONTENT_TYPE_HEADER = "content-type"
"""The message header reserved for the payload's mimetype."""

StartPosition = Literal["all", "new"] | int | datetime
"""Where a consumer starts: every message, only new ones, at a seq, or at the first
message stored at or after a time (an RFC 3339 timestamp on the wire)."""


def format_time(when: datetime) -> str:
    """``when`` as the RFC 3339 UTC timestamp the wire carries (``...Z``, microseconds).

    A naive datetime is taken as local time, as `datetime.timestamp` takes it.
    """
    utc = when.astimezone(timezone.utc)
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 timestamp with an offset (``Z`` or ``+hh:mm``; up to nanosecond
    digits, kept to microseconds) as a UTC datetime, or None when ``text`` is not one
    (a timestamp without an offset is ambiguous). A time that falls outside
    `datetime`'s range once in UTC (year 1 or 9999 with an offset) is its edge."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        return None
    day, clock, fraction, offset = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    zone = "+00:00" if offset in ("Z", "z") else offset
    try:
        when = datetime.fromisoformat(f"{day}T{clock}.{micros}{zone}")
    except ValueError:  # no such day or hour
        return None
    try:
        return when.astimezone(timezone.utc)
    except OverflowError:
        edge = datetime.min if when.year == 1 else datetime.max
        return edge.replace(tzinfo=timezone.utc)
