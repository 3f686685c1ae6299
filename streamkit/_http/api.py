"""One typed call per route of the streams HTTP API, over a `Transport`.

The client, the publisher and the subscription all speak to the server through
this module; it knows the paths and the body shapes, nothing about batching or
lifecycles.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from streamkit import tracing
from streamkit._http.received import Received
from streamkit._http.transport import StreamingBody, Transport
from streamkit.errors import APIError, DecodeError, TransportError
from streamkit.models import (
    Ack,
    Consumer,
    Delivery,
    Event,
    Stream,
    ack_fields_from_runs,
    ack_fields_from_wire,
    acks_from_wire,
    dumps,
)
from streamkit.protocol import routes, split
from streamkit.protocol.routes import Route
from streamkit.protocol.wire import (
    ACK_RUNS,
    ACKS_PARAM,
    DEFAULT_RECEIVE_BATCH,
    DELIVERIES_PARAM,
    DELIVERY_COLUMNS,
    EVENT_STREAM,
    MAX_REASON_CHARS,
    StartPosition,
    format_time,
)

_ACK_RUNS_PARAMS = {ACKS_PARAM: ACK_RUNS}

LONG_POLL_MARGIN = 5.0
"""Seconds the client waits past a server-side ``wait_for`` before it gives up."""

BODY_PIECE_BYTES = 256 * 1024
"""About how large each piece of a publish body is (see `body_pieces`)."""


def body_pieces(messages: Sequence[str]) -> list[bytes]:
    """The body of a publish, ``{"messages":[...]}`` around ``messages`` (each a message
    object's JSON text), as pieces of about `BODY_PIECE_BYTES` sent one after another.

    The whole body is never copied into one object. A body of megabytes would be
    copied twice (joined, then encoded) into fresh memory that the allocator maps
    for each request and unmaps after it: every page of it a page fault, which on a
    virtual machine costs more than the copy itself. Pieces this small are reused
    from the heap, request after request.
    """
    pieces: list[bytes] = []
    texts = ['{"messages":[']
    size = 0
    for index, message in enumerate(messages):
        if index:
            texts.append(",")
        texts.append(message)
        size += len(message)
        if size >= BODY_PIECE_BYTES:
            pieces.append("".join(texts).encode())
            texts, size = [], 0
    texts.append("]}")
    pieces.append("".join(texts).encode())
    return pieces


def _data(body: Any) -> Any:
    if not isinstance(body, dict) or "data" not in body:
        raise DecodeError(f"expected an object with 'data', got {str(body)[:200]!r}")
    return body["data"]


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise DecodeError(f"expected an object, got {str(body)[:200]!r}")
    return body


def _events_of_deliveries(stream: str, items: list[Any]) -> list[Event]:
    """Sequin's form of a receive's answer, an object per delivery, as events."""
    events = []
    from_wire = Event.from_wire
    for item in items:
        message = _object(_object(item).get("message"))
        try:
            delivery = Delivery(str(item["ack_id"]), int(item.get("delivery_count") or 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"malformed delivery: {exc!r}") from exc
        events.append(from_wire(message, stream=stream, delivery=delivery))
    return events


def _list(body: Any) -> list[Any]:
    items = _data(body)
    if not isinstance(items, list):
        raise DecodeError("expected 'data' to be a list")
    return items


class API:
    """Typed calls of the HTTP API. Reads and settles are retried; writes retry only
    when idempotent (publishes carry event ids the server dedupes on)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.takes_split: bool | None = None
        """Whether the server takes split bodies (`streamkit.protocol.split`), as its
        last publish answer said (``Accept-Post``), or its answer to `ask_takes_split`;
        None until one of them has."""
        self._asked = False
        self._asking = asyncio.Lock()

    async def _call(self, route: Route, *, retry: bool = False, **segments: str) -> Any:
        return await self.transport.request(route.method, route.url(**segments), retry=retry)

    # Server.

    async def ping(self) -> dict[str, Any]:
        """``GET /api/ping``."""
        return dict(_object(await self._call(routes.PING, retry=True)))

    # Streams.

    async def create_stream(self, name: str, options: Mapping[str, Any]) -> Stream:
        """``POST /api/streams``."""
        route = routes.CREATE_STREAM
        body = await self.transport.request(
            route.method, route.url(), json={"name": name, **options}
        )
        return Stream.from_wire(_object(body))

    async def get_stream(self, stream: str) -> Stream:
        """``GET /api/streams/{stream}``."""
        body = await self._call(routes.GET_STREAM, retry=True, stream=stream)
        return Stream.from_wire(_object(body))

    async def update_stream(self, stream: str, changes: Mapping[str, Any]) -> Stream:
        """``PATCH /api/streams/{stream}``."""
        route = routes.UPDATE_STREAM
        body = await self.transport.request(
            route.method, route.url(stream=stream), json=dict(changes), retry=True
        )
        return Stream.from_wire(_object(body))

    async def list_streams(self) -> list[Stream]:
        """``GET /api/streams``."""
        body = await self._call(routes.LIST_STREAMS, retry=True)
        return [Stream.from_wire(item) for item in _list(body)]

    async def delete_stream(self, stream: str) -> None:
        """``DELETE /api/streams/{stream}``."""
        await self._call(routes.DELETE_STREAM, stream=stream)

    # Consumers.

    async def create_consumer(self, stream: str, name: str, options: Mapping[str, Any]) -> Consumer:
        """``POST /api/streams/{stream}/consumers`` (a datetime ``start`` goes as RFC 3339)."""
        payload = {"name": name, "kind": "pull", **options}
        if "start" in payload:
            payload["start"] = _start(payload["start"])
        route = routes.CREATE_CONSUMER
        body = await self.transport.request(route.method, route.url(stream=stream), json=payload)
        return Consumer.from_wire(_object(body))

    async def get_consumer(self, stream: str, consumer: str) -> Consumer:
        """``GET /api/streams/{stream}/consumers/{consumer}``."""
        body = await self._call(routes.GET_CONSUMER, retry=True, stream=stream, consumer=consumer)
        return Consumer.from_wire(_object(body))

    async def list_consumers(self, stream: str) -> list[Consumer]:
        """``GET /api/streams/{stream}/consumers``."""
        body = await self._call(routes.LIST_CONSUMERS, retry=True, stream=stream)
        return [Consumer.from_wire(item) for item in _list(body)]

    async def delete_consumer(self, stream: str, consumer: str) -> None:
        """``DELETE /api/streams/{stream}/consumers/{consumer}``."""
        await self._call(routes.DELETE_CONSUMER, stream=stream, consumer=consumer)

    # Messages.

    async def send(
        self, stream: str, messages: Sequence[Mapping[str, Any]], *, retry: bool = True
    ) -> list[Ack]:
        """``POST /api/streams/{stream}/messages`` with wire messages; one `Ack` each, in order."""
        body = dumps({"messages": list(messages)})
        data = await self._send(stream, body, len(messages), retry)
        acks = data.get("acks")
        if not isinstance(acks, list) or len(acks) != len(messages):
            raise DecodeError("send response has no per-message acks; is the server streamkit?")
        return acks_from_wire(acks)

    async def send_for_seqs(
        self,
        stream: str,
        messages: Sequence[str],
        *,
        blobs: Sequence[bytes] = (),
        retry: bool = True,
    ) -> tuple[list[int], list[datetime]]:
        """`send` with each message object already encoded as JSON text, returning the seq
        and the commit time of each message, in order, instead of `Ack` objects.

        Messages with a ``data_size`` have their data in ``blobs``, in order: they go
        as a split body (`split.pieces`), or joined into JSON again for a server that
        has not said it takes those (`takes_split`; while that is unknown, it asks
        first: `ask_takes_split`). It asks for the acks as runs
        (``?acks=runs``: a few dozen bytes for a batch stored whole, instead of an
        object per message), and reads per-message acks from a server that answers
        with those. The publisher encodes each message as it goes (no thousand
        message dicts alive at once, each counted by the garbage collector) and
        makes an `Ack` only for whoever asks for one.
        """
        count = len(messages)
        if blobs and self.takes_split is None:
            await self.ask_takes_split(stream)
        if blobs and not self.takes_split:
            messages, blobs = split.rejoin(messages, blobs), ()
        if blobs:
            body, content_type = split.pieces(messages, blobs), split.SPLIT_MESSAGES
        else:
            body, content_type = body_pieces(messages), None
        try:
            data = await self._send(stream, body, count, retry, _ACK_RUNS_PARAMS, content_type)
        except APIError as exc:
            if not (blobs and exc.status == 400 and exc.code == "malformed_json"):
                raise
            # A server that took split bodies was replaced by one that does not.
            self.takes_split = False
            return await self.send_for_seqs(stream, messages, blobs=blobs, retry=retry)
        runs = data.get("ack_runs")
        if runs is not None:
            return ack_fields_from_runs(runs, count)
        acks = data.get("acks")  # a server that does not know ?acks=runs
        if not isinstance(acks, list) or len(acks) != count:
            raise DecodeError("send response has no per-message acks; is the server streamkit?")
        return ack_fields_from_wire(acks)

    async def ask_takes_split(self, stream: str) -> None:
        """Ask the messages route which bodies it takes (``OPTIONS``, ``Accept-Post``),
        once per client, unless a publish answer has said so already (`takes_split`).

        A server that answers with an error status (one that does not know the
        question), or with a body, takes JSON only. After a network failure the
        answer stays unknown: the batches go as JSON until a publish answer says
        otherwise.
        """
        async with self._asking:
            if self.takes_split is not None or self._asked:
                return
            self._asked = True
            headers: dict[str, str] = {}
            route = routes.PUBLISH_OPTIONS
            try:
                await self.transport.request(
                    route.method, route.url(stream=stream), response_headers=headers
                )
            except (APIError, DecodeError):
                self.takes_split = False
            except TransportError:
                return
            else:
                self.takes_split = split.SPLIT_MESSAGES in headers.get("accept-post", "")

    async def _send(
        self,
        stream: str,
        body: bytes | list[bytes],
        count: int,
        retry: bool,
        params: Mapping[str, str | int] | None = None,
        content_type: str | None = None,
    ) -> Mapping[str, Any]:
        """The ``data`` object answering a publish request of ``count`` messages; notes
        whether the answer says the server takes split bodies (`takes_split`)."""
        route = routes.PUBLISH
        attributes: dict[str, tracing.AttributeValue] = {
            "messaging.system": tracing.SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": stream,
            "messaging.batch.message_count": count,
        }
        with tracing.span(f"send {stream}", "producer", attributes):
            headers: dict[str, str] = {}
            answer = await self.transport.request(
                route.method,
                route.url(stream=stream),
                content=body,
                params=params,
                retry=retry,
                content_type=content_type,
                response_headers=headers,
            )
        self.takes_split = split.SPLIT_MESSAGES in headers.get("accept-post", "")
        return _object(_data(answer))

    async def read(
        self,
        stream: str,
        *,
        limit: int = 100,
        descending: bool = False,
        key_pattern: str | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        wait_for: float | None = None,
        from_time: datetime | None = None,
    ) -> list[Event]:
        """``GET /api/streams/{stream}/messages``: a page of stored events
        (``from_time``: from the first one stored at or after it)."""
        params: dict[str, str | int] = {
            "limit": limit,
            "sort": "seq_desc" if descending else "seq_asc",
        }
        if key_pattern is not None:
            params["key_pattern"] = key_pattern
        if after_seq is not None:
            params["after_seq"] = after_seq
        if before_seq is not None:
            params["before_seq"] = before_seq
        if from_time is not None:
            params["from_time"] = format_time(from_time)
        timeout = None
        if wait_for:
            params["wait_for"] = int(wait_for * 1000)
            timeout = self.transport.timeout + wait_for + LONG_POLL_MARGIN
        route = routes.READ_MESSAGES
        body = await self.transport.request(
            route.method, route.url(stream=stream), params=params, retry=True, timeout=timeout
        )
        return [Event.from_wire(_object(item), stream=stream) for item in _list(body)]

    # Delivery.

    async def receive(
        self,
        stream: str,
        consumer: str,
        *,
        batch_size: int = DEFAULT_RECEIVE_BATCH,
        wait_for: float = 0.0,
        retry: bool = True,
    ) -> list[Event]:
        """``POST .../consumers/{consumer}/receive``: deliver up to ``batch_size`` events,
        waiting up to ``wait_for`` seconds for the first one."""
        received = await self.receive_batch(
            stream, consumer, batch_size=batch_size, wait_for=wait_for, retry=retry
        )
        return received.events()

    async def receive_batch(
        self,
        stream: str,
        consumer: str,
        *,
        batch_size: int = DEFAULT_RECEIVE_BATCH,
        wait_for: float = 0.0,
        retry: bool = True,
    ) -> Received:
        """`receive`, with the deliveries kept as they came until each is handed out.

        It asks for them as columns (``?deliveries=columns``); a server that
        answers with an object per delivery (Sequin's form) is understood too.
        """
        params: dict[str, str | int] = {
            "batch_size": batch_size,
            DELIVERIES_PARAM: DELIVERY_COLUMNS,
        }
        if wait_for > 0:
            params["wait_for"] = int(wait_for * 1000)
        route = routes.RECEIVE
        timeout = self.transport.timeout + wait_for + LONG_POLL_MARGIN
        attributes = {
            "messaging.system": tracing.SYSTEM,
            "messaging.operation.type": "receive",
            "messaging.operation.name": "receive",
            "messaging.destination.name": stream,
            "messaging.consumer.group.name": consumer,
        }
        with tracing.span(f"receive {stream}", "client", attributes) as span:
            body = await self.transport.request(
                route.method,
                route.url(stream=stream, consumer=consumer),
                params=params,
                timeout=timeout,
                retry=retry,
            )
            data = _data(body)
            if type(data) is dict:
                received = Received.from_columns(stream, data)
            else:
                received = Received.from_events(stream, _events_of_deliveries(stream, _list(body)))
            tracing.set_attribute(span, "messaging.batch.message_count", len(received))
        return received

    @contextlib.asynccontextmanager
    async def tail(
        self,
        stream: str,
        *,
        key_pattern: str | None = None,
        from_seq: int | None = None,
        last_event_id: str | None = None,
        from_time: datetime | None = None,
    ) -> AsyncIterator[StreamingBody]:
        """``GET /api/streams/{stream}/messages/sse``: open the live tail's event stream.

        ``last_event_id`` (sent as ``Last-Event-ID``) resumes after that seq and
        wins over ``from_seq`` (inclusive), which wins over ``from_time`` (the first
        event stored at or after it); with none the tail starts at the stream's
        current end. `DecodeError` if the answer is not an event stream.
        """
        params: dict[str, str | int] = {}
        if key_pattern is not None:
            params["key_pattern"] = key_pattern
        if from_seq is not None:
            params["from_seq"] = from_seq
        if from_time is not None:
            params["from_time"] = format_time(from_time)
        headers = {"Accept": EVENT_STREAM, "Cache-Control": "no-cache"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        route = routes.TAIL_MESSAGES
        async with self.transport.stream(
            route.method, route.url(stream=stream), params=params, headers=headers
        ) as body:
            if body.content_type != EVENT_STREAM:
                raise DecodeError(f"expected {EVENT_STREAM}, got {body.content_type!r}")
            yield body

    async def _settle(
        self,
        route: Route,
        stream: str,
        consumer: str,
        ack_ids: Sequence[str],
        extra: Mapping[str, Any],
    ) -> None:
        await self.transport.request(
            route.method,
            route.url(stream=stream, consumer=consumer),
            json={"ack_ids": list(ack_ids), **extra},
            retry=True,
        )

    async def ack(self, stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        """``POST .../ack``: these deliveries are handled."""
        await self._settle(routes.ACK, stream, consumer, ack_ids, {})

    async def nack(
        self,
        stream: str,
        consumer: str,
        ack_ids: Sequence[str],
        delay: float | None = None,
        reason: str | None = None,
    ) -> None:
        """``POST .../nack``: deliver these again, after ``delay`` seconds; ``reason``
        (cut to `MAX_REASON_CHARS`) is kept as their last error."""
        extra: dict[str, Any] = {"delay_ms": int(delay * 1000)} if delay else {}
        if reason is not None:
            extra["reason"] = reason[:MAX_REASON_CHARS]
        await self._settle(routes.NACK, stream, consumer, ack_ids, extra)

    async def extend(self, stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        """``POST .../extend``: reset the ack deadline of these deliveries."""
        await self._settle(routes.EXTEND, stream, consumer, ack_ids, {})

    # Dead letters and seeking.

    async def dead_letters(
        self, stream: str, consumer: str, *, limit: int = 100, after_seq: int = 0
    ) -> list[tuple[Event, int, str | None]]:
        """``GET .../consumers/{consumer}/dead``: a page of (event, delivery count, last
        error) past ``after_seq``, by seq."""
        route = routes.DEAD_LETTERS
        body = await self.transport.request(
            route.method,
            route.url(stream=stream, consumer=consumer),
            params={"limit": limit, "after_seq": after_seq},
            retry=True,
        )
        out = []
        for item in _list(body):
            message = _object(item)
            error = message.get("last_error")
            try:
                count = int(message.get("delivery_count") or 0)
            except (TypeError, ValueError) as exc:
                raise DecodeError(f"malformed dead letter: {exc!r}") from exc
            event = Event.from_wire(message, stream=stream)
            out.append((event, count, None if error is None else str(error)))
        return out

    async def redrive(self, stream: str, consumer: str, seqs: Sequence[int] | None) -> int:
        """``POST .../dead/redrive``: deliver these dead letters (None: all) again."""
        body = await self._seqs(routes.REDRIVE, stream, consumer, seqs)
        return _count(body, "redriven")

    async def discard_dead(self, stream: str, consumer: str, seqs: Sequence[int] | None) -> int:
        """``POST .../dead/discard``: forget these dead letters (None: all)."""
        body = await self._seqs(routes.DISCARD_DEAD, stream, consumer, seqs)
        return _count(body, "discarded")

    async def _seqs(
        self, route: Route, stream: str, consumer: str, seqs: Sequence[int] | None
    ) -> Any:
        # Both are idempotent: a retried request finds nothing left to move and
        # answers a smaller count, but changes nothing twice.
        return await self.transport.request(
            route.method,
            route.url(stream=stream, consumer=consumer),
            json={"seqs": None if seqs is None else list(seqs)},
            retry=True,
        )

    async def reset_consumer(self, stream: str, consumer: str, start: StartPosition) -> Consumer:
        """``POST .../consumers/{consumer}/reset``: deliver from ``start`` on."""
        route = routes.RESET_CONSUMER
        body = await self.transport.request(
            route.method,
            route.url(stream=stream, consumer=consumer),
            json={"start": _start(start)},
        )
        return Consumer.from_wire(_object(body))


def _start(start: object) -> object:
    return format_time(start) if isinstance(start, datetime) else start


def _count(body: Any, name: str) -> int:
    value = _object(body).get(name)
    if type(value) is not int:
        raise DecodeError(f"expected an integer {name!r}, got {str(body)[:200]!r}")
    return value
