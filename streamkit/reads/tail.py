"""The live tail: a stream's new events over server-sent events, surviving reconnects.

`tail` opens ``GET .../messages/sse`` and yields each message as an `Event`.
When the connection drops, stalls (nothing, not even a keepalive, for the idle
timeout) or the server restarts, it reconnects with capped, jittered backoff
and resumes with ``Last-Event-ID`` after the last event it yielded, so nothing
is skipped and nothing is yielded twice. Errors that a retry cannot heal
(`NotFound`, `Unauthorized`, a bad filter, a malformed event) end it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from datetime import datetime

from streamkit import errors
from streamkit._http.api import API
from streamkit._http.retry import Backoff, retriable
from streamkit._http.sse_parser import ServerSentEvent, SSEParser
from streamkit.models import Event, loads
from streamkit.protocol.wire import HEARTBEAT_HEADER

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT = 15.0
"""Seconds between server keepalives assumed when the server does not say."""

IDLE_FACTOR = 3.0
"""Silence for this many heartbeats means the peer stalled: reconnect."""


def idle_timeout_for(headers: Mapping[str, str]) -> float:
    """Three heartbeats of the server that sent ``headers`` (15 s assumed if unsaid)."""
    heartbeat = DEFAULT_HEARTBEAT
    raw = headers.get(HEARTBEAT_HEADER)
    if raw:
        try:
            heartbeat = max(int(raw), 1) / 1000
        except ValueError:
            log.debug("ignoring malformed %s header %r", HEARTBEAT_HEADER, raw)
    return heartbeat * IDLE_FACTOR


def decode_event(sse: ServerSentEvent, stream: str) -> Event:
    """The `Event` an SSE event carries (its data is the wire message object)."""
    message = loads(sse.data)
    if not isinstance(message, dict):
        raise errors.DecodeError(f"expected a message object, got {sse.data[:200]!r}")
    return Event.from_wire(message, stream=stream)


async def tail(
    api: API,
    stream: str,
    *,
    key_pattern: str | None = None,
    from_seq: int | None = None,
    from_time: datetime | None = None,
    idle_timeout: float | None = None,
    backoff: float = 0.1,
    max_backoff: float = 5.0,
) -> AsyncIterator[Event]:
    """Yield ``stream``'s events live, from ``from_seq`` (inclusive), from the first
    stored at or after ``from_time``, or from now on.

    ``idle_timeout`` defaults to three of the server's heartbeats. Reconnects
    wait ``backoff`` doubling up to ``max_backoff`` seconds (full jitter),
    starting over once a connection delivers something.
    """
    delays = Backoff(backoff, max_backoff)
    resume: str | None = None
    while True:
        failure: errors.StreamkitError | None = None
        try:
            async with api.tail(
                stream,
                key_pattern=key_pattern,
                from_seq=from_seq if resume is None else None,
                from_time=from_time if resume is None else None,
                last_event_id=resume,
            ) as body:
                parser = SSEParser()
                timeout = idle_timeout or idle_timeout_for(body.headers)
                async for chunk in body.chunks(timeout):
                    delays.reset()
                    for sse in parser.feed(chunk):
                        try:
                            event = decode_event(sse, stream)
                        except errors.DecodeError as exc:
                            raise _BadEvent(exc) from exc
                        resume = sse.id or str(event.seq)
                        yield event
                    # The stream's preamble commits the starting cursor with no event.
                    resume = parser.last_event_id or resume
            log.info("live tail of %s ended by the server; reconnecting", stream)
        except _BadEvent as bad:
            raise bad.error from None
        except errors.StreamkitError as exc:
            if not retriable(exc, resend_safe=True):
                raise
            failure = exc
            log.info("live tail of %s interrupted (%r); reconnecting", stream, exc)
        await delays.wait(failure)


class _BadEvent(Exception):
    """An event that did not decode: a protocol error that reconnecting would repeat."""

    def __init__(self, error: errors.DecodeError) -> None:
        super().__init__(str(error))
        self.error = error
