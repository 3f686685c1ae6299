"""`Subscription`: an async iterator of ackable events over one or more streams.

A subscription owns three small workers, each a named task started and stopped
with it: a `~streamkit.subscriber._prefetcher.Prefetcher` (long-polls every stream into
bounded buffers while the handler works), an `~streamkit.subscriber._acker.Acker` (sends
acks and nacks in batches) and a `~streamkit.subscriber._leaser.Leaser` (holds every
delivery not yet settled and renews its ack deadline). On close, whatever it
still holds is nacked so that another consumer gets it at once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any

from streamkit import tracing
from streamkit._http.api import API
from streamkit._http.received import Received
from streamkit._http.retry import Backoff, retriable
from streamkit.errors import ClientClosed, StreamkitError, ValidationError
from streamkit.models import Delivery, Event
from streamkit.protocol.wire import MAX_BATCH, StartPosition
from streamkit.subscriber._acker import Acker
from streamkit.subscriber._attachment import Attachment
from streamkit.subscriber._batch import Batch
from streamkit.subscriber._leaser import Leaser
from streamkit.subscriber._prefetcher import Prefetcher

__all__ = ["Batch", "Subscription"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Workers:
    """The tasks of a started subscription, made once its consumers are known."""

    prefetcher: Prefetcher
    leaser: Leaser
    acker: Acker


class Subscription:
    """Events from one or more streams, as an async iterator of ackable events.

    Use it as ``async with client.subscribe("orders", consumer="billing") as sub:
    async for event in sub: ...`` (closing is then deterministic), or iterate
    it directly: leaving the loop (``break``, an exception, cancellation)
    closes it as soon as the loop lets go of it.

    - With ``consumer``, the subscription joins that durable consumer on every
      stream and competes with every other subscriber on it. Without, it
      creates an ephemeral consumer per stream over the keys matching
      ``filter`` (default ``">"``) from ``start`` (default ``"new"``); the
      server deletes it when the subscription closes, or when it has not been
      polled for ``inactive_threshold`` seconds.
    - Each stream is long-polled for up to ``batch_size`` events, waiting up to
      ``wait_for`` seconds; up to ``prefetch`` batches per stream are fetched
      ahead while the handler works. Streams take turns, batch by batch.
    - ``await event.ack()`` / ``nack(delay=...)`` queue the id and return; the
      ids are sent in batches every ``ack_interval`` seconds. Settling an
      event twice is a no-op.
    - ``subscription.batches()`` hands out the same events a receive at a time,
      as `Batch` objects settled whole with ``await batch.ack()`` or ``nack()``.
    - Until it is settled, an event's ack deadline is renewed in the background,
      for at most ``max_lease`` seconds.
    - Lost connections and server restarts are retried with backoff for as
      long as the subscription is open, from the start: a server that cannot
      be reached yet is tried again for up to ``connect_timeout`` seconds
      (None: until it answers or the subscription closes). Failures that
      cannot heal (a deleted stream or consumer, a bad key, a refused API key)
      raise out of the loop at once.
    - Closing stops polling, nacks every event received and not acked (handed
      out or still buffered), sends every queued ack and nack (for up to
      ``close_timeout`` seconds), and deletes ephemeral consumers.
    - With ``model``, ``event.decode()`` builds each payload as that class; a
      payload that does not fit raises `DecodeError` there, in the handler,
      and the subscription goes on (the event stays unsettled until the
      handler acks or nacks it, or the subscription closes).
    - With an OpenTelemetry tracer provider installed, each event handed out gets
      a consumer span (``event.delivery.span``), linked to the context it was
      published in and ended when the event is settled.

    Iterate a subscription from one loop at a time.
    """

    def __init__(
        self,
        api: API,
        streams: Sequence[str],
        *,
        consumer: str | None = None,
        filter: str | None = None,
        batch_size: int = 100,
        wait_for: float = 5.0,
        prefetch: int = 2,
        start: StartPosition | None = None,
        on_close: Callable[[Subscription], Any] | None = None,
        max_lease: float = 3600.0,
        ack_interval: float = 0.005,
        inactive_threshold: float = 30.0,
        close_timeout: float = 10.0,
        connect_timeout: float | None = None,
        model: type[Any] | None = None,
    ) -> None:
        if not streams:
            raise ValueError("a subscription needs at least one stream")
        if len(set(streams)) != len(streams):
            raise ValueError(f"streams are listed more than once: {list(streams)}")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be within 1..{MAX_BATCH}")
        if wait_for < 0:
            raise ValueError("wait_for must be >= 0")
        if prefetch < 1:
            raise ValueError("prefetch must be >= 1")
        if consumer is not None and (filter is not None or start is not None):
            raise ValueError(
                "filter and start apply to the ephemeral consumer of a subscription without "
                "consumer=; give them to create_consumer() for a durable one"
            )
        self.api = api
        self.streams = tuple(streams)
        self.consumer = consumer
        self.filter = filter
        self.start_at: StartPosition = "new" if start is None else start
        self.inactive_threshold = inactive_threshold
        self.close_timeout = close_timeout
        self.connect_timeout = connect_timeout
        self.model = model
        self._on_close = on_close
        self._batch_size = batch_size
        self._wait_for = wait_for
        self._prefetch = prefetch
        self._max_lease = max_lease
        self._ack_interval = ack_interval
        self._attachments: Mapping[str, Attachment] = MappingProxyType({})
        self._workers: _Workers | None = None
        self._start_lock = asyncio.Lock()
        self._started = False
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None
        self._handed_out: dict[str, Delivery] = {}
        """The deliveries handed out and not settled yet: the close marks those it
        gives back settled (ending their spans), so settling them later does nothing."""

    def __repr__(self) -> str:
        state = "closed" if self.closed else "closing" if self._closing else "open"
        return f"<Subscription streams={list(self.streams)} consumer={self.consumer!r} {state}>"

    @property
    def ephemeral(self) -> bool:
        """True when the subscription made its own consumers (no ``consumer=``)."""
        return self.consumer is None

    @property
    def closed(self) -> bool:
        """True once the subscription has finished closing."""
        return self._close_task is not None and self._close_task.done()

    @property
    def consumers(self) -> Mapping[str, str]:
        """Each stream's consumer name (the generated ones when ephemeral), once started."""
        return {stream: a.consumer for stream, a in self._attachments.items()}

    @property
    def ack_waits(self) -> Mapping[str, float]:
        """Each stream's consumer's ack deadline, in seconds, once started."""
        return {stream: a.ack_wait for stream, a in self._attachments.items()}

    @property
    def held(self) -> int:
        """Deliveries received and not yet settled (buffered or handed out)."""
        return 0 if self._workers is None else len(self._workers.leaser)

    # Lifecycle.

    async def start(self) -> None:
        """Resolve or create the consumers and start polling. Idempotent.

        Iterating or entering ``async with`` starts the subscription; start it
        early to create ephemeral consumers before publishing what they should
        see. Raises what went wrong (say `NotFound`) and closes the
        subscription.
        """
        async with self._start_lock:
            if self._closing:
                raise ClientClosed("the subscription is closed")
            if self._started:
                return
            # Set first, so that a failure below still closes (and deletes) what was made.
            self._started = True
            attached: dict[str, Attachment] = {}
            try:
                for stream in self.streams:
                    attached[stream] = await self._attach_when_reachable(stream)
            finally:
                self._attachments = MappingProxyType(attached)
            self._workers = workers = self._make_workers()
            workers.acker.start()
            workers.leaser.start()
            workers.prefetcher.start()

    def _make_workers(self) -> _Workers:
        attachments = self._attachments
        leaser = Leaser(self.api, attachments, max_lease=self._max_lease, on_dropped=self._forget)
        prefetcher = Prefetcher(
            self.api,
            attachments,
            batch_size=self._batch_size,
            wait_for=self._wait_for,
            prefetch=self._prefetch,
            on_batch=self._received,
        )
        acker = Acker(self.api, attachments, leaser, interval=self._ack_interval)
        return _Workers(prefetcher, leaser, acker)

    async def _attach_when_reachable(self, stream: str) -> Attachment:
        """`_attach`, retried with backoff while the server cannot be reached."""
        loop = asyncio.get_running_loop()
        give_up_at = None if self.connect_timeout is None else loop.time() + self.connect_timeout
        backoff = Backoff()
        # One name for every attempt: a retry finds what an attempt whose answer was lost made.
        name = self.consumer or f"sub-{uuid.uuid4().hex}"
        while True:
            try:
                return await self._attach(stream, name)
            except StreamkitError as exc:
                left = None if give_up_at is None else give_up_at - loop.time()
                if not retriable(exc, resend_safe=True) or (left is not None and left <= 0):
                    raise
                log.log(
                    logging.WARNING if backoff.failures == 0 else logging.DEBUG,
                    "%r: attaching to %r failed (%r); retrying",
                    self,
                    stream,
                    exc,
                )
                delay = backoff.delay(exc)
                await asyncio.sleep(delay if left is None else min(delay, left))

    async def _attach(self, stream: str, name: str) -> Attachment:
        if not self.ephemeral:
            found = await self.api.get_consumer(stream, name)
            ack_wait = found.ack_wait_ms / 1000
            return Attachment(name, ack_wait, ack_wait)
        options: dict[str, Any] = {
            "filter_key_pattern": self.filter or ">",
            "start": self.start_at,
            "ephemeral": True,
            "inactive_threshold_ms": int(self.inactive_threshold * 1000),
        }
        try:
            created = await self.api.create_consumer(stream, name, options)
        except ValidationError as exc:
            if "name" not in exc.validation_errors:
                raise
            # The name is ours alone: an earlier attempt was stored, its answer lost.
            created = await self.api.get_consumer(stream, name)
        ack_wait = created.ack_wait_ms / 1000
        # The server deletes an ephemeral consumer nobody polls, acks or extends for
        # inactive_threshold; a handler slow enough to fill the buffers stops the polls,
        # so the leaser's renewals must then come often enough to keep it alive.
        return Attachment(name, ack_wait, min(ack_wait, self.inactive_threshold))

    async def aclose(self) -> None:
        """Close the subscription (see the class docs); safe to call any number of times."""
        if self._close_task is None:
            self._closing = True
            self._close_task = asyncio.create_task(
                self._close(), name="streamkit-subscription-close"
            )
        # Shielded: a caller cancelled while waiting must not cut the nacks short.
        await asyncio.shield(self._close_task)

    async def _close(self) -> None:
        try:
            async with self._start_lock:
                if self._started:
                    await self._shut_down()
        finally:
            if self._on_close is not None:
                self._on_close(self)

    async def _shut_down(self) -> None:
        workers = self._workers
        if workers is not None:
            await workers.prefetcher.stop()
            await workers.leaser.stop()
            if held := workers.acker.give_back():
                self._settle_given_back(held)
            await workers.acker.stop(self.close_timeout)
        if self.ephemeral:
            for stream, name in self.consumers.items():
                try:
                    await self.api.delete_consumer(stream, name)
                except StreamkitError as exc:  # the server expires it anyway
                    log.warning("could not delete consumer %s on %r: %r", name, stream, exc)

    async def __aenter__(self) -> Subscription:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # Iteration.

    def __aiter__(self) -> AsyncIterator[Event]:
        # An async generator: when a loop over it ends early, its finalizer closes it.
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        try:
            await self.start()
            workers = self._workers
            assert workers is not None  # start() made them or raised
            while True:
                received = await workers.prefetcher.next_batch()
                if received is None:
                    return
                traced = tracing.recording()
                leases = workers.leaser.leases(received.stream)
                for index, ack_id in enumerate(received.ack_ids):
                    if self._closing:
                        return
                    leased_at = leases.get(ack_id)
                    if leased_at is None:  # its lease was dropped (max_lease): it is stale
                        continue
                    event = self._hand_out(received, index, leased_at)
                    if traced:
                        self._start_span(event)
                    yield event
        finally:
            await self.aclose()

    def batches(self) -> AsyncIterator[Batch]:
        """The events as batches, one per receive request: ``async for batch in
        subscription.batches(): ...; await batch.ack()``.

        Each `Batch` holds the events of one stream that one request received
        (at most ``batch_size``) and still held, and ``batch.ack()`` settles
        them as one run of ids, through the same acker and leases as
        ``event.ack()``: less work per event for handlers that take a batch
        whole. Iterate a subscription either by event or by batch, not both.
        Leaving the loop closes the subscription, as with ``async for event``.
        """
        return self._iterate_batches()

    async def _iterate_batches(self) -> AsyncIterator[Batch]:
        try:
            await self.start()
            workers = self._workers
            assert workers is not None  # start() made them or raised
            while True:
                received = await workers.prefetcher.next_batch()
                if received is None or self._closing:
                    return
                traced = tracing.recording()
                leases = workers.leaser.leases(received.stream)
                # A lease dropped (max_lease) while the batch waited makes its event stale.
                held = [
                    self._hand_out(received, index, leased_at)
                    for index, ack_id in enumerate(received.ack_ids)
                    if (leased_at := leases.get(ack_id)) is not None
                ]
                if not held:
                    continue
                if traced:
                    for event in held:
                        self._start_span(event)
                yield Batch(received.stream, held, self)
        finally:
            await self.aclose()

    def _hand_out(self, received: Received, index: int, leased_at: float) -> Event:
        """The ``index``-th event of ``received``, settled through this subscription."""
        event = received.event(index)
        delivery = event.delivery
        assert delivery is not None  # every received event has one
        delivery.settler = self
        delivery.leased_at = leased_at
        self._handed_out[delivery.ack_id] = delivery
        event.model = self.model
        return event

    def _forget(self, ack_ids: list[str]) -> None:
        """Stop tracking handed-out deliveries whose leases were dropped (max_lease): the
        close does not give them back, and an event nobody settles must not stay here."""
        handed_out = self._handed_out
        for ack_id in ack_ids:
            handed_out.pop(ack_id, None)

    def _settle_given_back(self, held: Mapping[str, list[str]]) -> None:
        """Mark settled the handed-out deliveries among ``held``, which the close gave back."""
        handed_out = self._handed_out
        for ack_ids in held.values():
            for ack_id in ack_ids:
                if (delivery := handed_out.pop(ack_id, None)) is not None:
                    delivery.settle()
        count = sum(map(len, held.values()))
        log.debug("%r: gave back %d unsettled deliveries", self, count)

    def _start_span(self, event: Event) -> None:
        """Start ``event``'s consumer span as it is handed out; settling it ends the span."""
        delivery = event.delivery
        if delivery is None or delivery.settled or delivery.span is not None:
            return
        stream = event.stream or ""
        delivery.span = tracing.consumer_span(
            f"process {stream}",
            event.headers,
            {
                "messaging.system": tracing.SYSTEM,
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": stream,
                "messaging.consumer.group.name": self._attachments[stream].consumer,
                "messaging.message.id": event.id,
            },
        )

    def _received(self, received: Received) -> None:
        assert self._workers is not None  # the prefetcher runs only once they exist
        now = asyncio.get_running_loop().time()
        self._workers.leaser.add(received.stream, received.ack_ids, now)

    # The Acknowledger protocol, behind Event.ack() / nack() / extend().

    def ack_nowait(self, event: Event) -> bool:
        """Queue an ack for ``event`` while the subscription runs; False (and nothing done)
        once it is closing, when `ack` must settle it. Behind ``await event.ack()``: no
        coroutine of its own per event."""
        delivery, stream, workers = event.delivery, event.stream, self._workers
        if delivery is None or stream is None or workers is None or workers.acker.stopping:
            return False
        delivery.settle()
        self._handed_out.pop(delivery.ack_id, None)
        workers.acker.ack(stream, delivery.ack_id)
        return True

    async def ack(self, event: Event) -> None:
        """Queue an ack for ``event`` (use ``await event.ack()``)."""
        # The hot path of every subscription: `_settle` and `_acker` written out.
        delivery, stream, workers = event.delivery, event.stream, self._workers
        if delivery is None or stream is None:
            raise StreamkitError(f"{event!r} was not received from a subscription")
        delivery.settle()
        self._handed_out.pop(delivery.ack_id, None)
        try:
            if workers is None:
                raise ClientClosed("the subscription is not running")
            workers.acker.ack(stream, delivery.ack_id)
        except ClientClosed:
            await self._settle_late(stream, delivery.ack_id)

    async def nack(self, event: Event, delay: float | None, reason: str | None = None) -> None:
        """Queue a nack: redeliver ``event`` after ``delay`` seconds (``await event.nack()``),
        with ``reason`` as its last error."""
        if delay is not None and delay < 0:
            raise ValueError("delay must be >= 0")
        stream, ack_id = self._settle(event)
        try:
            self._acker().nack(stream, ack_id, delay, reason)
        except ClientClosed:
            await self._settle_late(stream, ack_id, nack=True, delay=delay, reason=reason)

    def _settle(self, event: Event) -> tuple[str, str]:
        """Mark ``event``'s delivery settled; its stream and ack id."""
        delivery = event.delivery
        if event.stream is None or delivery is None:
            raise StreamkitError(f"{event!r} was not received from a subscription")
        delivery.settle()
        self._handed_out.pop(delivery.ack_id, None)
        return event.stream, delivery.ack_id

    def _acker(self) -> Acker:
        if self._workers is None:
            raise ClientClosed("the subscription is not running")
        return self._workers.acker

    async def _settle_late(
        self,
        stream: str,
        ack_id: str,
        *,
        nack: bool = False,
        delay: float | None = None,
        reason: str | None = None,
    ) -> None:
        # Only an event whose lease was dropped (max_lease) gets here: the close gave
        # back every other one. Its ack id may still be good, so send it on its own.
        if self.ephemeral:
            return  # the consumer was deleted with the subscription
        if nack:
            consumer = self._attachments[stream].consumer
            await self.api.nack(stream, consumer, [ack_id], delay, reason)
        else:
            await self.api.ack(stream, self._attachments[stream].consumer, [ack_id])

    async def settle_batch(
        self,
        stream: str,
        events: Sequence[Event],
        *,
        nack: bool,
        delay: float | None,
        reason: str | None,
    ) -> None:
        """Ack (or nack) the events of a batch not settled yet (use ``await batch.ack()``)."""
        ack_ids = [
            delivery.ack_id
            for event in events
            if (delivery := event.delivery) is not None and delivery.settle()
        ]
        if not ack_ids:
            return
        handed_out = self._handed_out
        for ack_id in ack_ids:
            handed_out.pop(ack_id, None)
        try:
            self._acker().settle_many(stream, ack_ids, nack=nack, delay=delay, reason=reason)
        except ClientClosed:
            # As in _settle_late: only deliveries whose leases were dropped get here.
            if self.ephemeral:
                return
            consumer = self._attachments[stream].consumer
            if nack:
                await self.api.nack(stream, consumer, ack_ids, delay, reason)
            else:
                await self.api.ack(stream, consumer, ack_ids)

    async def extend(self, event: Event) -> None:
        """Reset ``event``'s ack deadline now (``await event.extend()``)."""
        if event.stream is None or event.ack_id is None:
            raise StreamkitError(f"{event!r} was not received from a subscription")
        if self._closing:
            raise ClientClosed("the subscription is closed")
        consumer = self._attachments[event.stream].consumer
        await self.api.extend(event.stream, consumer, [event.ack_id])
