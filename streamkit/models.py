"""The values streamkit passes around: `Event`, `Ack`, `Stream`, `Consumer`, and the JSON codec.

`data` is a string on the wire. An event keeps the Python type it was made with
across a round trip: ``str`` travels as is, ``bytes`` as UTF-8 text (or base64
when they are not UTF-8) tagged with ``encoding``, and any other JSON-able value
as JSON text with the mimetype ``application/json``. The mimetype travels in the
reserved ``content-type`` header. pydantic models, msgspec Structs, dataclasses
and attrs instances are sent as JSON too; `Event.decode` builds them back.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import operator
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, TypeVar, overload

import orjson

try:  # the `fast` extra: UUIDv7 strings made in Rust, about twice as fast
    import uuid_utils
except ImportError:  # pragma: no cover - depends on what is installed
    uuid_utils = None  # type: ignore[assignment]

from streamkit import _typed_payloads
from streamkit.errors import DecodeError, Nack, StreamkitError
from streamkit.protocol import keys
from streamkit.protocol.wire import CONTENT_TYPE_HEADER, MAX_MESSAGE_BYTES
from streamkit.protocol.wire import JSON as JSON_MIMETYPE

__all__ = [
    "Ack",
    "Consumer",
    "Delivery",
    "Event",
    "Nack",
    "Publication",
    "Stream",
    "dumps",
    "loads",
    "new_event_id",
]

T = TypeVar("T")

TEXT_MIMETYPE = "text/plain"
BINARY_MIMETYPE = "application/octet-stream"


def dumps(value: Any) -> bytes:
    """Encode ``value`` as JSON bytes."""
    return orjson.dumps(value)


def loads(raw: bytes | str) -> Any:
    """Decode JSON, raising `DecodeError` on bad input."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from exc


_ID_TAILS_PER_REFILL = 256
_VARIANT = bytes(b & 0xF0 | 0x08 | b & 0x03 for b in range(256))
"""A random byte -> one whose low hex digit has the RFC 9562 variant bits (``10xx``)."""

_id_tails: Iterator[str] = iter(())
_id_prefix: tuple[int, str] = (-1, "")
"""(unix ms, the id's first 15 characters for that ms: ``tttttttt-tttt-7``)."""


def _random_id_tails() -> Iterator[str]:
    """The random ends of UUIDv7 strings, ``rrr-Vrrr-rrrrrrrrrrrr`` (74 random bits each),
    from one ``os.urandom`` call for the lot."""
    raw = bytearray(os.urandom(10 * _ID_TAILS_PER_REFILL))
    raw[1::10] = raw[1::10].translate(_VARIANT)  # each tail's 4th hex digit: V
    d = raw.hex()
    return iter(
        [f"{d[i : i + 3]}-{d[i + 3 : i + 7]}-{d[i + 7 : i + 19]}" for i in range(0, len(d), 20)]
    )


def _forget_id_tails() -> None:
    """After a fork: the child must not hand out the tails the parent will."""
    global _id_tails
    _id_tails = iter(())


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_id_tails)


def python_event_id() -> str:
    """`new_event_id` in pure Python, used when ``uuid-utils`` is not installed.

    Per id this only reads the clock: the timestamp is formatted once per
    millisecond and the random parts come from `os.urandom` a few hundred at a
    time. Thread-safe: each tail is taken with one atomic ``next``, and two
    threads refilling at once only discard some unused tails.
    """
    global _id_prefix, _id_tails
    ms = time.time_ns() // 1_000_000
    prefix = _id_prefix
    if prefix[0] != ms:
        prefix = _id_prefix = (ms, f"{ms >> 16 & 0xFFFF_FFFF:08x}-{ms & 0xFFFF:04x}-7")
    tail = next(_id_tails, None)
    if tail is None:
        _id_tails = _random_id_tails()
        tail = next(_id_tails)
    return prefix[1] + tail


if uuid_utils is None:  # pragma: no cover - depends on what is installed

    def new_event_id() -> str:
        """A new time-ordered UUIDv7 string (RFC 9562): 48 bits of unix ms, 74 random bits
        (made by `python_event_id`; install the ``fast`` extra for ``uuid-utils``)."""
        return python_event_id()

else:
    _uuid7 = uuid_utils.uuid7

    def new_event_id() -> str:
        """A new time-ordered UUIDv7 string (RFC 9562): 48 bits of unix ms, 74 random bits
        (made by ``uuid-utils``, the ``fast`` extra; without it by `python_event_id`)."""
        return str(_uuid7())


def parse_time(value: object) -> datetime | None:
    """Parse an ISO-8601 timestamp from the wire; None when absent."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise DecodeError(f"invalid timestamp {value!r}") from exc


_parse_stamp = functools.lru_cache(maxsize=1024)(parse_time)
"""`parse_time` for received messages: those stored by one publish share their timestamp."""

_key_problem = functools.lru_cache(maxsize=4096)(keys.key_problem)
"""`keys.key_problem`, remembered: applications publish many events under few keys."""


@dataclass(frozen=True)
class Ack:
    """The server stored a published event: its ``seq`` and ``committed`` time."""

    id: str
    seq: int
    committed: datetime


class Acknowledger(Protocol):
    """What a received event asks to settle itself (implemented by a subscription)."""

    def ack_nowait(self, event: Event) -> bool:
        """Queue the ack of ``event`` if that needs no waiting; False if `ack` must run."""
        ...

    async def ack(self, event: Event) -> None: ...
    async def nack(self, event: Event, delay: float | None, reason: str | None = None) -> None: ...
    async def extend(self, event: Event) -> None: ...


class Publication:
    """One publication of an event: started when a publisher takes the event, then
    settled once, with an `Ack` or a `Nack`.

    Making one starts it (it raises while another publication of the event is
    in progress); the publisher settles it, and the event only reads it
    (`Event.acked`, `Event.wait_for_ack`). Publishing the event again starts a
    new publication, and settling an old one then changes nothing. The
    publisher's queued item is a subclass that also carries the event (until it
    is settled) and the callbacks.

    The event holds its publication, not the other way round: a settled event
    is freed as soon as nobody uses it, with no reference cycle left for the
    garbage collector. An ack given with `settle_ack` is kept as its seq and
    commit time; the `Ack` object is made the first time somebody asks for it.
    """

    __slots__ = ("_committed", "_outcome", "_seq", "_waiter", "id")

    def __init__(self, event: Event) -> None:
        current = event._publication
        if current is not None and not current.settled:
            raise StreamkitError(f"event {event.id} is already being published")
        self.id = event.id
        """The id of the published event."""
        self._outcome: Ack | Nack | None = None
        self._seq = 0
        self._committed: datetime | None = None
        """Set by `settle_ack`: the event is stored, its `Ack` not made yet."""
        self._waiter: asyncio.Future[Ack] | None = None
        """Made by `wait` only: most published events are never waited for."""
        event._publication = self

    @property
    def settled(self) -> bool:
        """True once it has ended (acked or nacked)."""
        return self._outcome is not None or self._committed is not None

    @property
    def outcome(self) -> Ack | Nack | None:
        """How it ended; None until it has."""
        outcome = self._outcome
        if outcome is None and self._committed is not None:
            outcome = self._outcome = Ack(self.id, self._seq, self._committed)
        return outcome

    @property
    def acked(self) -> bool:
        """True once it ended with an `Ack`."""
        return self._committed is not None or isinstance(self._outcome, Ack)

    def settle(self, outcome: Ack | Nack) -> bool:
        """End it with ``outcome``; False (and no change) if it had already ended."""
        if self._outcome is not None or self._committed is not None:
            return False
        self._outcome = outcome
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if isinstance(outcome, Nack):
                waiter.set_exception(outcome)
                waiter.exception()  # retrieved here so an unawaited nack is not logged as lost
            else:
                waiter.set_result(outcome)
        return True

    def settle_ack(self, seq: int, committed: datetime) -> bool:
        """End it with the ack of a stored event, without making the `Ack` unless
        somebody waits for it; False (and no change) if it had already ended."""
        if self._waiter is not None:
            return self.settle(Ack(self.id, seq, committed))
        if self._outcome is not None or self._committed is not None:
            return False
        self._seq = seq
        self._committed = committed
        return True

    async def wait(self, timeout: float | None = None) -> Ack:
        """The `Ack` once it is settled (or raise the `Nack`)."""
        outcome = self.outcome
        if outcome is None:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            return await asyncio.wait_for(asyncio.shield(self._waiter), timeout)
        if isinstance(outcome, Nack):
            raise outcome
        return outcome


class Delivery:
    """How a received event was delivered: its ack id, how many times it has been
    delivered, and the subscription that settles it (None for a plain `receive`).

    The subscription attaches itself and marks the delivery settled when the
    event is acked or nacked (or given back on close); after that, settling
    again is a no-op.
    """

    __slots__ = ("_settled", "ack_id", "count", "leased_at", "settler", "span")

    def __init__(self, ack_id: str, count: int = 1) -> None:
        self.ack_id = ack_id
        self.count = count
        self.settler: Acknowledger | None = None
        self.span: Any = None
        """The OpenTelemetry consumer span of this delivery, once a subscription handed
        it out with tracing on; it ends when the delivery is settled."""
        self.leased_at = 0.0
        """``loop.time()`` when a subscription began to hold it (its ``max_lease`` runs
        from there); 0.0 when no subscription holds it."""
        self._settled = False

    @property
    def settled(self) -> bool:
        """True once the delivery was acked, nacked or given back."""
        return self._settled

    def settle(self) -> bool:
        """Mark it settled; False if it already was."""
        if self._settled:
            return False
        self._settled = True
        if self.span is not None:
            self.span.end()
        return True


def _encode_data(data: object, mimetype: str | None) -> tuple[str, str | None, str | None]:
    """Return (wire data, encoding, mimetype) for a payload."""
    if isinstance(data, str):
        return data, None, mimetype
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        try:
            return raw.decode("utf-8"), "utf-8", mimetype or BINARY_MIMETYPE
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii"), "base64", mimetype or BINARY_MIMETYPE
    try:
        text = orjson.dumps(data, default=_typed_payloads.to_jsonable).decode("utf-8")
    except TypeError as exc:
        raise TypeError(
            "event data must be str, bytes, JSON-able, or a pydantic model, msgspec Struct, "
            f"dataclass or attrs instance, not {type(data).__name__}: {exc}"
        ) from exc
    return text, None, mimetype or JSON_MIMETYPE


def _decode_data(text: str, encoding: str | None, mimetype: str | None) -> Any:
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecodeError("event data is not valid base64") from exc
    if encoding == "utf-8":
        return text.encode("utf-8")
    if mimetype == JSON_MIMETYPE:
        return loads(text)
    return text


class Event:
    """One event: a payload, a key, an id and headers.

    ``Event(data, mimetype)`` follows pyensign. ``data`` may be ``str``, ``bytes``
    or any JSON-able value; it comes back as the same type when received. Without
    a key, the event is published under the stream's name. Every event gets a
    time-ordered id unless one is given; the server uses it to drop duplicates,
    so retries never store an event twice.

    Events received from a subscription also carry ``seq``, ``stream`` and a
    `Delivery` (``ack_id``, ``delivery_count``), and can be settled with `ack`,
    `nack` and `extend`. A received payload that does not decode as its
    mimetype or encoding says is handed over all the same: ``data`` is then its
    wire text and `decode_error` says what is wrong with it.

    Typed payloads: ``data`` may also be a pydantic model, a msgspec Struct, a
    dataclass or an attrs instance (sent as JSON). A received event's ``data``
    is the JSON; `decode` builds a model instance from it, by default as the
    `model` the read was made with (``subscribe(..., model=Order)``).
    """

    __slots__ = (
        "_decode_error",
        "_delivery",
        "_headers",
        "_publication",
        "_typed",
        "_wire_data",
        "data",
        "encoding",
        "id",
        "inserted_at",
        "key",
        "mimetype",
        "model",
        "seq",
        "stream",
        "stream_id",
    )

    def __init__(
        self,
        data: Any,
        mimetype: str | None = None,
        *,
        key: str | None = None,
        id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if key is not None and (problem := _key_problem(key)):
            raise ValueError(f"invalid event key {key!r}: {problem}")
        if type(data) is str:  # the common case, without a call
            wire_data, encoding = data, None
        else:
            wire_data, encoding, mimetype = _encode_data(data, mimetype)
        if (
            len(wire_data) > MAX_MESSAGE_BYTES
            and len(wire_data.encode("utf-8")) > MAX_MESSAGE_BYTES
        ):
            raise ValueError(f"event data is over the {MAX_MESSAGE_BYTES} byte limit")
        self.data: Any = data
        self.mimetype = mimetype
        self.key = key
        self.id = id or new_event_id()
        self._headers: dict[str, str] | None = dict(headers) if headers else None
        self.encoding = encoding
        self._wire_data = wire_data
        self.seq: int | None = None
        self.stream: str | None = None
        self.stream_id: str | None = None
        self.inserted_at: datetime | None = None
        self._publication: Publication | None = None
        self._delivery: Delivery | None = None
        self._decode_error: DecodeError | None = None
        self.model: type[Any] | None = None
        """The class `decode` builds by default: set by reads made with ``model=``."""
        self._typed: tuple[type[Any], Any] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The event's headers, string to string (its mimetype is kept apart, in `mimetype`)."""
        if self._headers is None:
            self._headers = {}  # made on first use: most events never have any
        return self._headers

    @headers.setter
    def headers(self, value: dict[str, str]) -> None:
        self._headers = value

    def __repr__(self) -> str:
        where = f" seq={self.seq}" if self.seq is not None else ""
        return f"<Event id={self.id} key={self.key!r}{where} data={self.data!r:.60}>"

    # Payload access.

    def text(self) -> str:
        """The payload as text (bytes are decoded as UTF-8)."""
        if isinstance(self.data, (bytes, bytearray)):
            return bytes(self.data).decode("utf-8")
        return self._wire_data

    @property
    def decode_error(self) -> DecodeError | None:
        """Why a received payload did not decode as its mimetype or encoding says; then
        ``data`` holds the payload's wire text as it was stored. None for the others."""
        return self._decode_error

    def json(self) -> Any:
        """The payload decoded as JSON (raises `decode_error` when there is one)."""
        if self._decode_error is not None:
            raise self._decode_error
        data = self.data
        if (
            self.mimetype == JSON_MIMETYPE
            and not isinstance(data, (str, bytes))
            and not _typed_payloads.is_model(type(data))
        ):
            return data
        return loads(self.text())

    @overload
    def decode(self) -> Any: ...
    @overload
    def decode(self, model: type[T]) -> T: ...
    def decode(self, model: type[Any] | None = None) -> Any:
        """The payload as an instance of ``model`` (by default `model`, the class the read
        was made with): a pydantic model, msgspec Struct, dataclass or attrs class.

        Raises `DecodeError` naming the stream, the seq and the field when the
        payload does not fit; the event is left as it is (not acked, not nacked).
        The result is kept: decoding again as the same class returns it.
        """
        model = model or self.model
        if model is None:
            raise TypeError("decode() needs a model class, or a read made with model=")
        typed = self._typed
        if typed is not None and typed[0] is model:
            return typed[1]
        if isinstance(self.data, model) and _typed_payloads.is_model(model):
            return self.data  # an event made with an instance of it
        where = f"message {self.seq} of {self.stream!r}" if self.seq is not None else "payload"
        if self._decode_error is not None:
            raise self._decode_error
        try:
            value = _typed_payloads.decode(model, self._wire_data, self.json)
        except _typed_payloads.Misfit as exc:
            raise DecodeError(
                f"{where} does not fit {model.__name__}: {exc}",
                stream=self.stream,
                seq=self.seq,
                field=exc.field,
            ) from exc
        self._typed = (model, value)
        return value

    # Wire format.

    def to_wire(self, default_key: str) -> dict[str, Any]:
        """The message object for ``POST .../messages``."""
        message: dict[str, Any] = {
            "key": self.key or default_key,
            "data": self._wire_data,
            "id": self.id,
        }
        headers = self._headers
        if self.mimetype is not None:
            headers = {**(headers or {}), CONTENT_TYPE_HEADER: self.mimetype}
        if headers:
            message["headers"] = headers
        if self.encoding is not None:
            message["encoding"] = self.encoding
        return message

    @classmethod
    def from_wire(
        cls,
        message: Mapping[str, Any],
        *,
        stream: str | None = None,
        delivery: Delivery | None = None,
    ) -> Event:
        """Build a received event from a wire message object (and how it was delivered)."""
        try:
            fields = (message["data"], message["key"], message["seq"])
        except (KeyError, TypeError) as exc:
            raise DecodeError(f"malformed message: {exc!r}") from exc
        return cls.from_fields(
            *fields,
            id=message.get("id"),
            headers=message.get("headers"),
            encoding=message.get("encoding"),
            inserted_at=message.get("inserted_at"),
            stream=stream,
            stream_id=message.get("stream_id"),
            delivery=delivery,
        )

    @classmethod
    def from_fields(
        cls,
        text: Any,
        key: Any,
        seq: Any,
        *,
        id: Any = None,
        headers: Any = None,
        encoding: Any = None,
        inserted_at: Any = None,
        stream: str | None = None,
        stream_id: Any = None,
        delivery: Delivery | None = None,
    ) -> Event:
        """Build a received event from the fields of its wire message, as they came:
        what `from_wire` and the column decoder of a receive share. Raises
        `DecodeError` when a field is not what the wire promises."""
        try:
            if not isinstance(text, str):
                raise DecodeError("message data must be a string")
            mimetype = None
            if headers:
                headers = dict(headers)
                mimetype = headers.pop(CONTENT_TYPE_HEADER, None)
                headers = headers or None  # made on first use, as for published events
            else:
                headers = None
            event = cls.__new__(cls)
            event._decode_error = None
            try:
                if encoding is None and mimetype is None:  # plain text, without a call
                    event.data = text
                else:
                    event.data = _decode_data(text, encoding, mimetype)
            except DecodeError as exc:
                # One bad payload must not fail the events received with it: the
                # user gets it as the wire text, flagged, and decides what to do.
                event.data = text
                event._decode_error = DecodeError(
                    f"message {seq} of {stream or stream_id}: "
                    f"its data does not decode as {encoding or mimetype}: {exc}"
                )
            event.mimetype = mimetype
            event.key = key
            event.id = id or ""
            event._headers = headers
            event.encoding = encoding
            event._wire_data = text
            event.seq = int(seq)
            event.stream = stream
            event.stream_id = stream_id
            event.inserted_at = _parse_stamp(inserted_at)
            event._publication = None
            event._delivery = delivery
            event.model = None
            event._typed = None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DecodeError(f"malformed message: {exc!r}") from exc
        return event

    # Publishing side.

    @property
    def publication(self) -> Publication | None:
        """The latest publication of this event; None if it was never published."""
        return self._publication

    @property
    def publishing(self) -> bool:
        """True while a publication of this event is in progress."""
        return self._publication is not None and not self._publication.settled

    @property
    def acked(self) -> bool:
        """True once the server stored this published event."""
        return self._publication is not None and self._publication.acked

    @property
    def nacked(self) -> bool:
        """True once publishing this event failed for good."""
        publication = self._publication
        return publication is not None and publication.settled and not publication.acked

    async def wait_for_ack(self, timeout: float | None = None) -> Ack:
        """Wait until the server stores this event; return the `Ack` or raise the `Nack`."""
        if self._publication is None:
            raise StreamkitError(f"event {self.id} has not been published")
        return await self._publication.wait(timeout)

    # Receiving side.

    @property
    def delivery(self) -> Delivery | None:
        """How this event was delivered; None unless it was received from a consumer."""
        return self._delivery

    @property
    def ack_id(self) -> str | None:
        """The id that acks or nacks this delivery; None unless received from a consumer."""
        return None if self._delivery is None else self._delivery.ack_id

    @property
    def delivery_count(self) -> int:
        """How many times this event has been delivered (1 the first time; 0 if never)."""
        return 0 if self._delivery is None else self._delivery.count

    def _settler(self) -> Acknowledger | None:
        """Who settles this delivery now; None once it is settled."""
        delivery = self._delivery
        if delivery is None or delivery.settler is None:
            raise StreamkitError("only events received from a subscription can be acked")
        return None if delivery.settled else delivery.settler

    async def ack(self) -> None:
        """Tell the server this event is handled. Acking twice is a no-op."""
        if (settler := self._settler()) and not settler.ack_nowait(self):
            await settler.ack(self)  # only when the subscription is closing

    async def nack(self, delay: float | None = None, *, reason: str | None = None) -> None:
        """Give the event back to be delivered again, after ``delay`` seconds. ``reason``
        (why handling failed) is kept by the server as the event's ``last_error``, shown
        with it if it ends up a dead letter."""
        if settler := self._settler():
            await settler.nack(self, delay, reason)

    async def extend(self) -> None:
        """Reset this event's ack deadline: the handler is still working on it."""
        if settler := self._settler():
            await settler.extend(self)


@dataclass(frozen=True)
class Stream:
    """A stream as the server describes it."""

    id: str
    name: str
    message_count: int = 0
    consumer_count: int = 0
    storage_size: int = 0
    one_message_per_key: bool = False
    inserted_at: datetime | None = None
    retain_up_to: int | None = None
    max_storage_gb: int | None = None
    retain_at_least: int | None = None
    max_bytes: int | None = None
    max_age: timedelta | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> Stream:
        """Build from a stream object."""
        try:
            stats = body.get("stats") or {}
            return cls(
                id=str(body["id"]),
                name=str(body["name"]),
                message_count=int(stats.get("message_count", 0)),
                consumer_count=int(stats.get("consumer_count", 0)),
                storage_size=int(stats.get("storage_size", 0)),
                one_message_per_key=bool(body.get("one_message_per_key", False)),
                inserted_at=parse_time(body.get("inserted_at")),
                retain_up_to=_optional_int(body.get("retain_up_to")),
                max_storage_gb=_optional_int(body.get("max_storage_gb")),
                retain_at_least=_optional_int(body.get("retain_at_least")),
                max_bytes=_optional_int(body.get("max_bytes")),
                max_age=_optional_ms(body.get("max_age_ms")),
                raw=dict(body),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DecodeError(f"malformed stream object: {exc!r}") from exc


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_ms(value: Any) -> timedelta | None:
    return None if value is None else timedelta(milliseconds=int(value))


@dataclass(frozen=True)
class Consumer:
    """A consumer (a durable cursor over a stream) as the server describes it."""

    id: str
    name: str
    stream_id: str
    filter_key_pattern: str
    ack_wait_ms: int
    max_ack_pending: int
    max_deliver: int | None
    pending: int = 0
    in_flight: int = 0
    dead: int = 0
    skipped: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> Consumer:
        """Build from a consumer object."""
        try:
            stats = body.get("stats") or {}
            max_deliver = body.get("max_deliver")
            return cls(
                id=str(body["id"]),
                name=str(body["name"]),
                stream_id=str(body["stream_id"]),
                filter_key_pattern=str(body["filter_key_pattern"]),
                ack_wait_ms=int(body["ack_wait_ms"]),
                max_ack_pending=int(body["max_ack_pending"]),
                max_deliver=None if max_deliver is None else int(max_deliver),
                pending=int(stats.get("pending", 0)),
                in_flight=int(stats.get("in_flight", 0)),
                dead=int(stats.get("dead", 0)),
                skipped=int(stats.get("skipped", 0)),
                raw=dict(body),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DecodeError(f"malformed consumer object: {exc!r}") from exc


def ack_from_wire(body: Mapping[str, Any]) -> Ack:
    """Build an `Ack` from one entry of a send response's ``acks``."""
    return acks_from_wire([body])[0]


def acks_from_wire(items: Sequence[Mapping[str, Any]]) -> list[Ack]:
    """`ack_from_wire` for each entry of a send response's ``acks``, in order."""
    seqs, committed = ack_fields_from_wire(items)
    try:
        return [
            Ack(str(body["id"]), seq, stamp)
            for body, seq, stamp in zip(items, seqs, committed, strict=True)
        ]
    except (KeyError, TypeError) as exc:
        raise DecodeError(f"malformed ack: {exc!r}") from exc


def ack_fields_from_runs(runs: object, count: int) -> tuple[list[int], list[datetime]]:
    """The seq and the commit time of each of ``count`` published messages, in order, from
    a send response's ``ack_runs``: ``[first seq, count, commit time]`` runs in request
    order (``?acks=runs``; a batch stored whole is one run)."""
    seqs: list[int] = []
    committed: list[datetime] = []
    if not isinstance(runs, list):
        raise DecodeError(f"malformed ack runs: {str(runs)[:200]!r}")
    try:
        for first, length, stamp in runs:
            if type(first) is not int or type(length) is not int or length < 1:
                raise DecodeError(f"malformed ack run: {[first, length, stamp]!r}")
            if len(seqs) + length > count:
                break  # more than was sent: said below
            moment = parse_time(stamp) or datetime.now(timezone.utc)
            seqs += range(first, first + length)
            committed += [moment] * length
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"malformed ack runs: {exc!r}") from exc
    if len(seqs) != count or len(runs) > count:
        raise DecodeError(f"ack runs do not cover the {count} messages sent: {str(runs)[:200]}")
    return seqs, committed


_get_seq = operator.itemgetter("seq")
_get_committed = operator.methodcaller("get", "committed")


def ack_fields_from_wire(items: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[datetime]]:
    """The seq and the commit time of each entry of a send response's ``acks``, in order,
    without making an `Ack` of each (the publisher makes one only for whoever asks).

    The acks of one batch share their commit time: each distinct one is parsed
    once, and the list then holds the same `datetime` object many times.
    """
    try:
        seqs = list(map(int, map(_get_seq, items)))
        stamps = list(map(_get_committed, items))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"malformed ack: {exc!r}") from exc
    if not stamps:
        return seqs, []
    if stamps.count(stamps[0]) == len(stamps):  # the usual case: one commit
        return seqs, [parse_time(stamps[0]) or datetime.now(timezone.utc)] * len(stamps)
    committed: list[datetime] = []
    last: object = committed  # equal to no stamp
    moment = datetime.now(timezone.utc)
    for stamp in stamps:
        if stamp != last:
            last = stamp
            moment = parse_time(stamp) or datetime.now(timezone.utc)
        committed.append(moment)
    return seqs, committed
