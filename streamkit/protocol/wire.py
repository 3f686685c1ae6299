"""The facts of the wire format both sides hold to: limits, header names, media types.

The server enforces these limits and documents them in its OpenAPI document;
the client batches, chunks and checks against the same numbers.
"""

from __future__ import annotations

from typing import Literal

MAX_BATCH = 1000
"""The most messages in one publish request, one read page or one receive."""

MAX_ACK_IDS = 1000
"""The most ack ids in one ack, nack or extend request (a receive's worth)."""

MAX_MESSAGE_BYTES = 1024 * 1024
"""The largest ``data`` one message may carry, in UTF-8 bytes of its wire text (base64
text for binary payloads). The server's default limit (``--max-message-bytes``) and
the client's check on `Event`."""

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

CONTENT_TYPE_HEADER = "content-type"
"""The message header reserved for the payload's mimetype."""

StartPosition = Literal["all", "new"] | int
"""Where a new consumer starts: every message, only new ones, or at a seq."""
