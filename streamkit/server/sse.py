"""Server-sent events: how the live tail (``GET .../messages/sse``) writes messages.

One stored message becomes one event block::

    id: 42
    event: orders.eu.7
    data: {"key":"orders.eu.7","stream_id":"…","data":"{\\"total\\":12.5}","seq":42,…}

``id`` is the message's seq (what ``Last-Event-ID`` resumes from), ``event`` its
key (as DESIGN.md says) and ``data`` the wire message object exactly as
``GET .../messages`` returns it, as one line of JSON (orjson escapes every
newline inside strings, so the object never spans lines).

A stream opens with a preamble, ``retry: 1000`` and ``id: <cursor>`` followed by
a blank line but no data: per the WHATWG processing model that sets the
reader's last event id to the starting cursor without dispatching an event, so
even a reconnect before the first message resumes exactly where the first
connection began. An idle stream gets a ``: keepalive`` comment every heartbeat
(15 s by default); the ``Streamkit-Heartbeat-Ms`` response header says how often.

Query parameters: ``key_pattern`` (a filter, applied by the store),
``from_seq=N`` (start at seq N inclusive), ``from_time=T`` (start at the first
message stored at or after the RFC 3339 time T), ``last_event_id=N`` (start after N;
for browsers, which cannot set the header on the first connection) and
``event=key|message``. The ``Last-Event-ID`` header wins over both start
parameters, because a browser reconnects with the first URL unchanged.

Browsers: ``EventSource.onmessage`` only sees events without an ``event:``
field, so with the default naming listen per key, or ask for ``event=message``
(no ``event:`` line; the key is inside the data) and use ``onmessage``::

    const url = "/api/streams/orders/messages/sse?event=message&key_pattern=orders.eu.>";
    const es = new EventSource(url);
    es.onmessage = (e) => { const m = JSON.parse(e.data); show(m.key, m.seq, m.data); };
    // or, with the default names: es.addEventListener("orders.eu.7", handler)

``EventSource`` cannot send an ``Authorization`` header: against a server with
an API key, put the page behind a proxy that adds it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from aiohttp import web

from streamkit.protocol.wire import EVENT_STREAM, HEARTBEAT_HEADER, MAX_BATCH
from streamkit.server import validation
from streamkit.server.responses import with_data_hash
from streamkit.server.state import CLOSING, CONFIG, METRICS, STORE
from streamkit.server.store.base import (
    Message,
    MessageQuery,
    Store,
    StoreNotFound,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

RETRY_MS = 1000
"""The reconnect delay a live tail tells its reader (``retry:``)."""
KEEPALIVE = b": keepalive\n\n"
"""A comment line: ignored by every SSE reader, but it proves the connection is alive."""

_DUMPS_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


@dataclass(frozen=True)
class TailParams:
    """What a live-tail request asks for."""

    after_seq: int | None
    """Deliver messages with a greater seq; None: only messages stored from now on."""
    key_pattern: str | None
    """Only messages whose key matches this filter."""
    named: bool
    """Name each event by its key (``event: <key>``); False leaves ``event:`` out."""
    from_time: datetime | None = None
    """Without ``after_seq``: start at the first message stored at or after this time."""


def tail_params(query: Mapping[str, str], headers: Mapping[str, str]) -> TailParams:
    """Parse a tail request; `BadParam` when malformed.

    The resume point is, in this order: the ``Last-Event-ID`` header (a browser
    sends it on reconnect, with the URL of the first connection unchanged, so it
    wins), ``?last_event_id=N`` (seq > N), ``?from_seq=N`` (seq >= N) and
    ``?from_time=T`` (stored at or after T).
    Without any, the tail starts at the current end of the stream.
    """
    after: int | None = None
    from_time: datetime | None = None
    header = headers.get("Last-Event-ID", "").strip()
    if header:
        after = validation.int_param({"Last-Event-ID": header}, "Last-Event-ID", 0, minimum=0)
    elif query.get("last_event_id"):
        after = validation.int_param(query, "last_event_id", 0, minimum=0)
    elif query.get("from_seq"):
        after = max(validation.int_param(query, "from_seq", 0, minimum=0) - 1, 0)
    else:
        from_time = validation.time_param(query, "from_time")
    pattern = validation.message_query({"key_pattern": query.get("key_pattern")}).key_pattern
    event = query.get("event") or "key"
    if event not in ("key", "message"):
        raise validation.BadParam("event", "must be 'key' or 'message'")
    return TailParams(
        after_seq=after, key_pattern=pattern, named=event == "key", from_time=from_time
    )


def preamble(cursor: int, retry_ms: int | None) -> bytes:
    """The first bytes of a stream: the reconnect delay and the starting cursor."""
    head = b"" if retry_ms is None else b"retry: %d\n" % retry_ms
    return head + b"id: %d\n\n" % cursor


def encode_messages(messages: Sequence[Message], *, named: bool = True) -> bytes:
    """A batch of stored messages as SSE event blocks, ready for one write."""
    with_data_hash(messages)
    dumps = orjson.dumps
    if named:
        return b"".join(
            [
                b"id: %d\nevent: %s\ndata: %s\n\n"
                % (m["seq"], m["key"].encode(), dumps(m, option=_DUMPS_OPTIONS))
                for m in messages
            ]
        )
    return b"".join(
        [b"id: %d\ndata: %s\n\n" % (m["seq"], dumps(m, option=_DUMPS_OPTIONS)) for m in messages]
    )


def encode_event(
    data: str, *, id: str | None = None, event: str | None = None, retry_ms: int | None = None
) -> bytes:
    """One arbitrary event block; multi-line ``data`` becomes several ``data:`` lines.

    ``id`` and ``event`` must be single lines (``ValueError`` otherwise), and an
    ``id`` must not contain NUL, which readers ignore.
    """
    lines: list[str] = []
    if retry_ms is not None:
        lines.append(f"retry: {int(retry_ms)}")
    if id is not None:
        if _breaks_line(id) or "\0" in id:
            raise ValueError("an SSE id must be one line without NUL")
        lines.append(f"id: {id}")
    if event is not None:
        if _breaks_line(event):
            raise ValueError("an SSE event name must be one line")
        lines.append(f"event: {event}")
    normalized = data.replace("\r\n", "\n").replace("\r", "\n")
    lines.extend(f"data: {line}" for line in normalized.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def _breaks_line(value: str) -> bool:
    return "\n" in value or "\r" in value


# -- the handler ---------------------------------------------------------------------


async def tail(request: web.Request) -> web.StreamResponse:
    """``GET .../messages/sse``: the stream's messages as they are stored, as events.

    Starts at the current end unless ``Last-Event-ID`` / ``?last_event_id`` /
    ``?from_seq`` / ``?from_time`` give a resume point; ``?key_pattern`` filters. Batches come
    from the store's long-poll (one write per batch); an idle stream gets a
    ``: keepalive`` comment every heartbeat. The stream ends when the server
    shuts down, the stream is deleted or the client goes away.
    """
    params = tail_params(request.query, request.headers)
    store = request.app[STORE]
    stream = request.match_info["stream"]
    first: list[Message] = []
    # Every read resolves the stream: a bad ref is a 404 before any header is sent.
    after_seq = params.after_seq
    if after_seq is None and params.from_time is not None:
        at = await store.read_messages(stream, MessageQuery(limit=1, from_time=params.from_time))
        after_seq = at[0]["seq"] - 1 if at else None
    if after_seq is None:
        last = await store.read_messages(stream, MessageQuery(limit=1, descending=True))
        cursor = last[0]["seq"] if last else 0
    else:
        cursor = after_seq
        first = await store.read_messages(
            stream,
            MessageQuery(limit=MAX_BATCH, key_pattern=params.key_pattern, after_seq=cursor),
        )
    heartbeat_ms: int = request.app[CONFIG]["sse_heartbeat_ms"]
    response = web.StreamResponse(
        headers={
            "Content-Type": EVENT_STREAM,
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
            HEARTBEAT_HEADER: str(heartbeat_ms),
        }
    )
    try:
        await response.prepare(request)
    except ConnectionError as exc:  # the client went away before its headers
        log.debug("live tail of %s ended before it began: %r", stream, exc)
        return response
    server_metrics = request.app[METRICS]
    server_metrics.sse_connections.inc()
    try:
        await _pump(request, response, store, stream, params, cursor, first, heartbeat_ms)
    finally:
        server_metrics.sse_connections.dec()
    return response


async def _pump(
    request: web.Request,
    response: web.StreamResponse,
    store: Store,
    stream: str,
    params: TailParams,
    cursor: int,
    batch: list[Message],
    heartbeat_ms: int,
) -> None:
    """Write batches until shutdown, stream deletion or disconnect; raises only on cancel."""
    closing = request.app[CLOSING]
    sent = request.app[METRICS].sse_events
    query = MessageQuery(
        limit=MAX_BATCH,
        key_pattern=params.key_pattern,
        after_seq=cursor,
        wait_ms=heartbeat_ms,
    )
    chunk = preamble(cursor, RETRY_MS)
    try:
        while True:
            if batch:
                chunk += encode_messages(batch, named=params.named)
                query = dataclasses.replace(query, after_seq=batch[-1]["seq"])
                sent.inc(len(batch))
            await response.write(chunk)
            if closing.is_set() or _gone(request):
                return
            batch = await store.read_messages(stream, query)
            if not batch and (closing.is_set() or _gone(request)):
                return
            chunk = b"" if batch else KEEPALIVE
    except (ConnectionError, StoreNotFound, StoreUnavailable) as exc:
        log.debug("live tail of %s ended: %r", stream, exc)
    except Exception:
        log.exception("live tail of %s failed", stream)


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()
