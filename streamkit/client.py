"""`connect()` and `AsyncClient`: the pool, lifecycle, admin calls, publishers, subscriptions."""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import ssl as _ssl
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final

from streamkit import tracing
from streamkit._http.api import API
from streamkit._http.transport import Transport
from streamkit.errors import ClientClosed, NotFound, ValidationError
from streamkit.models import Consumer, Event, Stream
from streamkit.protocol.wire import StartPosition
from streamkit.publisher import AckCallback, NackCallback, Publishable, Publisher, PublisherConfig
from streamkit.reads.catchup import FORWARD, Direction, get, iterate
from streamkit.reads.dead_letters import DeadLetter, iterate_dead
from streamkit.reads.tail import tail
from streamkit.subscriber import Subscription

log = logging.getLogger(__name__)

DEFAULT_URL = "http://localhost:7376"


class _Unchanged(enum.Enum):
    UNCHANGED = "unchanged"


UNCHANGED: Final = _Unchanged.UNCHANGED
"""Default of `AsyncClient.update_stream`'s limits: leave that limit as it is."""


def _milliseconds(value: timedelta | float | None) -> int | None:
    """A duration (`timedelta` or seconds) as whole milliseconds, at least 1."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not seconds > 0:
        raise ValueError(f"a duration must be positive, not {value!r}")
    return max(1, round(seconds * 1000))


def _taken(exc: ValidationError) -> bool:
    return any("already been taken" in p for p in exc.validation_errors.get("name", []))


def connect(
    url: str | None = None,
    *,
    api_key: str | None = None,
    timeout: float = 10.0,
    retries: int = 3,
    endpoints: Sequence[str] | None = None,
    publisher: PublisherConfig | None = None,
    close_timeout: float = 5.0,
    ssl: _ssl.SSLContext | bool | None = None,
) -> AsyncClient:
    """Create an `AsyncClient`; use it as ``async with streamkit.connect() as client:``.

    ``url`` defaults to ``$STREAMKIT_URL`` or ``http://localhost:7376``;
    ``endpoints`` lists several gateways to fail over between; ``api_key`` is
    sent as a bearer token (default ``$STREAMKIT_API_KEY``). ``timeout`` bounds
    every request (long polls get their wait on top); idempotent requests are
    retried ``retries`` times with backoff. For ``https://`` URLs, ``ssl`` is an
    `ssl.SSLContext` to verify the server with (say, one trusting a private CA),
    ``False`` to skip verification, or None for the system's default trust.
    """
    urls = list(endpoints or [url or os.environ.get("STREAMKIT_URL") or DEFAULT_URL])
    transport = Transport(
        urls,
        api_key=api_key or os.environ.get("STREAMKIT_API_KEY"),
        timeout=timeout,
        retries=retries,
        ssl=ssl,
    )
    return AsyncClient(transport, publisher=publisher, close_timeout=close_timeout)


class AsyncClient:
    """A connection to a streamkit server: admin calls, publishing and subscribing.

    It owns one pooled HTTP session, one `Publisher` per stream it publishes to,
    and the subscriptions it opened. ``close()`` (or leaving ``async with``)
    flushes the publishers within ``close_timeout``, closes the subscriptions
    (nacking events handed out but not acked) and then the pool.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        publisher: PublisherConfig | None = None,
        close_timeout: float = 5.0,
    ) -> None:
        self.api = API(transport)
        self.publisher_config = publisher or PublisherConfig()
        self.close_timeout = close_timeout
        self._publishers: dict[str, Publisher] = {}
        self._subscriptions: set[Subscription] = set()
        self._closed = False

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        """True once `close` has been called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed("the client is closed")

    async def close(self) -> None:
        """Flush publishers (bounded by ``close_timeout``), close subscriptions, close the pool."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.gather(
                *(p.close(self.close_timeout) for p in self._publishers.values()),
                *(s.aclose() for s in list(self._subscriptions)),
                return_exceptions=True,
            )
        finally:
            await self.api.transport.close()

    # Server.

    async def ping(self) -> dict[str, Any]:
        """Check the server answers; return what it says of itself (``ok``, ``version``)."""
        self._check_open()
        return await self.api.ping()

    # Streams.

    async def create_stream(
        self,
        name: str,
        *,
        exist_ok: bool = False,
        one_message_per_key: bool | None = None,
        process_unmodified: bool | None = None,
        max_storage_gb: int | None = None,
        retain_up_to: int | None = None,
        retain_at_least: int | None = None,
        max_bytes: int | None = None,
        max_age: timedelta | float | None = None,
    ) -> Stream:
        """Create a stream; with ``exist_ok`` return the existing one of that name.

        Retention (oldest messages go first): ``retain_up_to`` messages at most,
        ``max_bytes`` / ``max_storage_gb`` (GiB) of keys and data at most but never
        fewer than ``retain_at_least`` messages, none older than ``max_age`` (a
        `timedelta` or seconds). ``update_stream`` changes them later.
        """
        self._check_open()
        options = {
            k: v
            for k, v in {
                "one_message_per_key": one_message_per_key,
                "process_unmodified": process_unmodified,
                "max_storage_gb": max_storage_gb,
                "retain_up_to": retain_up_to,
                "retain_at_least": retain_at_least,
                "max_bytes": max_bytes,
                "max_age_ms": _milliseconds(max_age),
            }.items()
            if v is not None
        }
        try:
            return await self.api.create_stream(name, options)
        except ValidationError as exc:
            if exist_ok and _taken(exc):
                return await self.api.get_stream(name)
            raise

    async def update_stream(
        self,
        stream: str,
        *,
        retain_up_to: int | _Unchanged | None = UNCHANGED,
        max_storage_gb: int | _Unchanged | None = UNCHANGED,
        retain_at_least: int | _Unchanged | None = UNCHANGED,
        max_bytes: int | _Unchanged | None = UNCHANGED,
        max_age: timedelta | float | _Unchanged | None = UNCHANGED,
    ) -> Stream:
        """Change a stream's retention limits; ``None`` lifts a limit, omitted ones stay.

        A lowered limit applies at once: the server trims the oldest messages
        down to it (in small steps) and consumers behind them skip ahead.
        """
        self._check_open()
        changes: dict[str, int | None] = {}
        for name, value in (
            ("retain_up_to", retain_up_to),
            ("max_storage_gb", max_storage_gb),
            ("retain_at_least", retain_at_least),
            ("max_bytes", max_bytes),
        ):
            if not isinstance(value, _Unchanged):
                changes[name] = value
        if not isinstance(max_age, _Unchanged):
            changes["max_age_ms"] = _milliseconds(max_age)
        if not changes:
            raise ValueError("update_stream needs at least one limit to change")
        return await self.api.update_stream(stream, changes)

    async def get_stream(self, stream: str) -> Stream:
        """A stream by name or id, with its stats."""
        self._check_open()
        return await self.api.get_stream(stream)

    async def list_streams(self) -> list[Stream]:
        """Every stream."""
        self._check_open()
        return await self.api.list_streams()

    async def delete_stream(self, stream: str, *, missing_ok: bool = False) -> None:
        """Delete a stream, its messages and its consumers."""
        self._check_open()
        try:
            await self.api.delete_stream(stream)
        except NotFound:
            if not missing_ok:
                raise

    # Consumers.

    async def create_consumer(
        self,
        stream: str,
        name: str,
        filter: str = ">",
        *,
        exist_ok: bool = False,
        ack_wait: float | None = None,
        max_ack_pending: int | None = None,
        max_deliver: int | None = None,
        start: StartPosition | None = None,
    ) -> Consumer:
        """Create a durable consumer over the keys matching ``filter``.

        ``ack_wait`` (seconds) is how long a delivery may stay unacked before it
        is delivered again; ``start`` is ``"all"`` (default), ``"new"``, a seq or a
        `datetime` (the first event stored at or after it; a naive one is local time).
        """
        self._check_open()
        options: dict[str, Any] = {"filter_key_pattern": filter}
        if ack_wait is not None:
            options["ack_wait_ms"] = int(ack_wait * 1000)
        if max_ack_pending is not None:
            options["max_ack_pending"] = max_ack_pending
        if max_deliver is not None:
            options["max_deliver"] = max_deliver
        if start is not None:
            options["start"] = start
        try:
            return await self.api.create_consumer(stream, name, options)
        except ValidationError as exc:
            if exist_ok and _taken(exc):
                return await self.api.get_consumer(stream, name)
            raise

    async def get_consumer(self, stream: str, consumer: str) -> Consumer:
        """A consumer by name or id, with its stats (pending, in flight, dead)."""
        self._check_open()
        return await self.api.get_consumer(stream, consumer)

    async def list_consumers(self, stream: str) -> list[Consumer]:
        """The consumers of a stream."""
        self._check_open()
        return await self.api.list_consumers(stream)

    async def delete_consumer(
        self, stream: str, consumer: str, *, missing_ok: bool = False
    ) -> None:
        """Delete a consumer."""
        self._check_open()
        try:
            await self.api.delete_consumer(stream, consumer)
        except NotFound:
            if not missing_ok:
                raise

    # Low-level data plane: one request each, no background work.

    async def send(self, stream: str, events: Iterable[Event]) -> list[Any]:
        """Store ``events`` in one all-or-nothing request and return their `Ack`s."""
        self._check_open()
        events = list(events)
        if trace := tracing.context_headers():
            for event in events:
                event.headers.update(trace)
        return await self.api.send(stream, [e.to_wire(stream) for e in events])

    async def receive(
        self, stream: str, consumer: str, *, batch_size: int = 10, wait_for: float = 0.0
    ) -> list[Event]:
        """Take up to ``batch_size`` deliveries, waiting up to ``wait_for`` seconds for one.

        Settle them with `ack` / `nack` (or use `subscribe`, which does it for you).
        """
        self._check_open()
        return await self.api.receive(stream, consumer, batch_size=batch_size, wait_for=wait_for)

    async def ack(self, stream: str, consumer: str, events: Iterable[Event | str]) -> None:
        """Acknowledge deliveries (events or ack ids)."""
        self._check_open()
        await self.api.ack(stream, consumer, _ack_ids(events))

    async def nack(
        self,
        stream: str,
        consumer: str,
        events: Iterable[Event | str],
        *,
        delay: float | None = None,
        reason: str | None = None,
    ) -> None:
        """Give deliveries back, to be delivered again after ``delay`` seconds; ``reason``
        (why handling failed) is kept as their ``last_error`` (see `dead_letters`)."""
        self._check_open()
        await self.api.nack(stream, consumer, _ack_ids(events), delay, reason)

    # Dead letters and seeking.

    def dead_letters(
        self, stream: str, consumer: str, *, batch_size: int = 100
    ) -> AsyncIterator[DeadLetter]:
        """Iterate over what ``consumer`` dead-lettered after ``max_deliver`` deliveries,
        by seq: each a `DeadLetter` with its event, delivery count and last error."""
        self._check_open()
        return iterate_dead(self.api, stream, consumer, batch_size=batch_size)

    async def redrive(self, stream: str, consumer: str, seqs: Iterable[int] | None = None) -> int:
        """Put dead letters (these ``seqs``, or every one) back to be delivered, each
        with a fresh ``max_deliver`` count; returns how many went back. Seqs that
        are not dead letters are ignored. The JetStream engine cannot: `APIError` 501.
        """
        self._check_open()
        return await self.api.redrive(stream, consumer, _seqs(seqs))

    async def discard_dead(
        self, stream: str, consumer: str, seqs: Iterable[int] | None = None
    ) -> int:
        """Forget dead letters (these ``seqs``, or every one), as if they were acked;
        returns how many. The events stay in the stream."""
        self._check_open()
        return await self.api.discard_dead(stream, consumer, _seqs(seqs))

    async def reset_consumer(self, stream: str, consumer: str, start: StartPosition) -> Consumer:
        """Seek: the consumer forgets what it has in flight, waiting and dead, and
        delivers from ``start`` on: ``"all"``, ``"new"``, a seq or a `datetime`.
        Events handed out before can no longer be acked (acking them is a no-op)."""
        self._check_open()
        return await self.api.reset_consumer(stream, consumer, start)

    # Catch-up reads.

    async def get(
        self,
        stream: str,
        *,
        max_count: int = 100,
        from_seq: int | None = None,
        direction: Direction = FORWARD,
        key_pattern: str | None = None,
        model: type[Any] | None = None,
        from_time: datetime | None = None,
    ) -> list[Event]:
        """Read up to ``max_count`` stored events from ``from_seq`` (inclusive).

        ``direction=BACKWARD`` reads newest first; without ``from_seq`` a read
        starts at the beginning (forward) or the end (backward) of the stream.
        With ``model`` (a pydantic model, msgspec Struct, dataclass or attrs
        class), ``event.decode()`` gives each payload as that class.
        ``from_time`` (forward) starts at the first event stored at or after it.
        """
        self._check_open()
        return await get(
            self.api,
            stream,
            max_count=max_count,
            from_seq=from_seq,
            direction=direction,
            key_pattern=key_pattern,
            model=model,
            from_time=from_time,
        )

    def iter(
        self,
        stream: str,
        *,
        from_seq: int | None = None,
        direction: Direction = FORWARD,
        key_pattern: str | None = None,
        batch_size: int = 500,
        follow: bool = False,
        model: type[Any] | None = None,
        from_time: datetime | None = None,
    ) -> AsyncIterator[Event]:
        """Iterate over a stream's stored events, a page at a time.

        With ``follow=True`` it then goes on with live events (a catch-up
        subscription): no gap and no duplicate at the switch. With ``model``,
        ``event.decode()`` gives each payload as that class. ``from_time``
        (forward) starts at the first event stored at or after it.
        """
        self._check_open()
        return iterate(
            self.api,
            stream,
            from_seq=from_seq,
            direction=direction,
            key_pattern=key_pattern,
            batch_size=batch_size,
            follow=follow,
            model=model,
            from_time=from_time,
        )

    def tail(
        self,
        stream: str,
        key_pattern: str | None = None,
        from_seq: int | None = None,
        *,
        from_time: datetime | None = None,
        idle_timeout: float | None = None,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
    ) -> AsyncIterator[Event]:
        """Follow a stream live over server-sent events: an endless async iterator.

        Starts with the events stored from now on, at ``from_seq`` (inclusive)
        or at the first stored at or after ``from_time``; ``key_pattern``
        filters on the server. A dropped or stalled connection (silent for
        ``idle_timeout``, by default three server heartbeats) is reopened with
        jittered backoff (``backoff`` doubling up to ``max_backoff`` seconds)
        and resumes after the last event yielded. Raises `NotFound`,
        `Unauthorized` and other errors a retry cannot heal.
        Nothing is acked: it reads the stream, it is not a consumer.
        """
        self._check_open()
        return tail(
            self.api,
            stream,
            key_pattern=key_pattern,
            from_seq=from_seq,
            from_time=from_time,
            idle_timeout=idle_timeout,
            backoff=backoff,
            max_backoff=max_backoff,
        )

    # Publishing.

    def publisher(self, stream: str) -> Publisher:
        """The background `Publisher` for ``stream`` (created on first use)."""
        self._check_open()
        if stream not in self._publishers:
            self._publishers[stream] = Publisher(self.api, stream, self.publisher_config)
        return self._publishers[stream]

    async def publish(
        self,
        stream: str,
        *events: Publishable,
        on_ack: AckCallback | None = None,
        on_nack: NackCallback | None = None,
        block: bool = True,
    ) -> None:
        """Queue events for publishing and return; a background flush sends them.

        Accepts events, lists of events and async iterators of events. Each event
        ends in exactly one of ``on_ack(ack)`` / ``on_nack(nack)`` (sync or async);
        ``await event.wait_for_ack()`` waits for one. With ``block=False`` a full
        buffer raises `QueueFull` instead of waiting.
        """
        await self.publisher(stream).publish(*events, on_ack=on_ack, on_nack=on_nack, block=block)

    async def flush(self, timeout: float | None = 2.0) -> None:
        """Wait until all events queued so far are acked or nacked; `TimeoutError` past it."""
        self._check_open()
        await asyncio.gather(*(p.flush(timeout) for p in self._publishers.values()))

    # Subscribing.

    def subscribe(
        self,
        *streams: str,
        consumer: str | None = None,
        filter: str | None = None,
        batch_size: int = 100,
        wait_for: float = 5.0,
        prefetch: int = 2,
        start: StartPosition | None = None,
        max_lease: float = 3600.0,
        inactive_threshold: float = 30.0,
        connect_timeout: float | None = None,
        model: type[Any] | None = None,
    ) -> Subscription:
        """Subscribe to one or more streams: an async iterator of ackable events.

        With ``consumer`` the subscription joins that durable consumer (competing
        with every other subscriber on it); without, an ephemeral consumer over
        new events (or ``filter``/``start``) is created per stream and deleted on
        close — the server expires it ``inactive_threshold`` seconds after this
        process stops polling. Events handed out are kept leased (their ack
        deadline extended) for up to ``max_lease`` seconds. A server that cannot
        be reached when the subscription starts is retried with backoff, for up
        to ``connect_timeout`` seconds (None: for as long as it is open).
        With ``model`` (a pydantic model, msgspec Struct, dataclass or attrs
        class), ``event.decode()`` gives each payload as that class, or raises
        `DecodeError` for one that does not fit and leaves that event unsettled.
        """
        self._check_open()
        if not streams:
            raise ValueError("subscribe() needs at least one stream")
        subscription = Subscription(
            self.api,
            streams,
            consumer=consumer,
            filter=filter,
            batch_size=batch_size,
            wait_for=wait_for,
            prefetch=prefetch,
            start=start,
            on_close=self._subscriptions.discard,
            max_lease=max_lease,
            inactive_threshold=inactive_threshold,
            connect_timeout=connect_timeout,
            model=model,
        )
        self._subscriptions.add(subscription)
        return subscription


def _seqs(seqs: Iterable[int] | None) -> list[int] | None:
    if seqs is None:
        return None
    out = list(seqs)
    if not all(type(seq) is int and seq > 0 for seq in out):
        raise ValueError("seqs must be positive integers")
    return out


def _ack_ids(events: Iterable[Event | str]) -> list[str]:
    ids = []
    for item in events:
        ack_id = item if isinstance(item, str) else item.ack_id
        if not ack_id:
            raise ValueError(f"{item!r} has no ack id: it was not received from a consumer")
        ids.append(ack_id)
    return ids
