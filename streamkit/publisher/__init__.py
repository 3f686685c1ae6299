"""The per-stream publisher: a bounded buffer in front of lanes that batch, send and settle.

``publish`` only queues: it tracks each event (the future behind
``event.wait_for_ack()``), hashes its key to a lane and returns. Each lane's
task sends one batch at a time: at once when it has nothing in flight, and
whatever arrived meanwhile as its next batch (up to count and byte limits, or
after an explicit linger time), so events of one key are stored in publish
order while several lanes keep several batches in flight. The buffer counts
events from publish until they are settled (queued and in flight alike); when
it is full, ``publish`` waits for space or, with ``block=False``, raises
`QueueFull`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Awaitable, Iterable
from dataclasses import dataclass

import orjson

from streamkit import errors, tracing
from streamkit._http.api import API
from streamkit.models import Event
from streamkit.protocol import split
from streamkit.protocol.wire import MAX_BATCH
from streamkit.publisher._lanes import Lane
from streamkit.publisher._sender import (
    AckCallback,
    BatchSender,
    NackCallback,
    QueuedEvent,
    utf8_size,
)

__all__ = ["AckCallback", "NackCallback", "Publishable", "Publisher", "PublisherConfig"]

log = logging.getLogger(__name__)

Publishable = Event | Iterable[Event] | AsyncIterable[Event]
"""What ``publish`` accepts: events, iterables of events and async iterables of events."""

YIELD_EVENTS = 128
"""A `Publisher.publish` call lets the event loop run after queueing this many events
(or ``max_bytes`` of them, whichever comes first).

Queueing never waits while the buffer has room, so without a turn now and then a
long call would hold the loop until the buffer is full, and the lanes' answers,
and the batches they send next, would wait that long while the server sits
idle. Measured with the bench's publisher (100 B events, 16 keys, two CPUs): a
turn every 128 events against one every 2 MiB (about 14,000 events) stored 216k
events/s against 190k (medians of 5 alternated runs); every 30 events cost more
than it gained.
"""


@dataclass(frozen=True)
class PublisherConfig:
    """How a `Publisher` batches, buffers and retries.

    - ``max_batch`` (≤ 1000), ``max_bytes``: the most events, and encoded bytes,
      per request. A lane with nothing in flight sends what it holds at once;
      what arrives while its request is in flight forms the next batch, so
      batches grow with the rate and a lone event waits for nothing.
    - ``linger``: 0 by default. Above 0, a batch that is not full waits until
      its oldest event has waited ``linger`` seconds, trading latency for
      bigger batches.
    - ``max_in_flight``: lanes, each with at most one batch in flight; events of
      one key always share a lane, so they are stored in publish order.
    - ``max_buffer``, ``max_buffer_bytes``: events (and their encoded bytes)
      published but not yet settled; past either, ``publish`` waits.
    - ``retry_deadline``: how long a batch is retried (network errors, timeouts,
      429 and 5xx) before its events are nacked with code ``unavailable``;
      retries wait ``backoff * 2**attempt`` seconds with full jitter, at most
      ``max_backoff`` (or the server's ``Retry-After``, capped the same way).
    """

    max_batch: int = 1000
    max_bytes: int = 2 * 1024 * 1024
    linger: float = 0.0
    max_in_flight: int = 8
    max_buffer: int = 10_000
    max_buffer_bytes: int = 32 * 1024 * 1024
    retry_deadline: float = 30.0
    backoff: float = 0.05
    max_backoff: float = 2.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch <= MAX_BATCH:
            raise ValueError(f"max_batch must be between 1 and {MAX_BATCH}")
        for name in ("max_bytes", "max_in_flight", "max_buffer", "max_buffer_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("linger", "retry_deadline", "backoff", "max_backoff"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


class Publisher:
    """The background flush queue of one stream (made by `AsyncClient.publisher`).

    Every published event ends in exactly one of ``on_ack(Ack)`` / ``on_nack(Nack)``
    and its ``wait_for_ack()`` returns the `Ack` or raises the `Nack`. Nack codes:
    ``invalid`` (the server rejected the event), ``too_large``, ``not_found``,
    ``unauthorized``, ``rejected`` (another 4xx), ``unavailable`` (transient
    failures outlasted ``retry_deadline``), ``bad_response``, ``closed`` (the
    publisher closed first) and ``internal``. After ``unavailable`` or ``closed``
    the event may still have been stored; publishing it again within the
    server's dedupe window is safe.
    """

    def __init__(self, api: API, stream: str, config: PublisherConfig | None = None) -> None:
        self.api = api
        self.stream = stream
        self.config = config = config or PublisherConfig()
        sender = BatchSender(
            api,
            stream,
            retry_deadline=config.retry_deadline,
            backoff=config.backoff,
            max_backoff=config.max_backoff,
        )
        self._lanes = [
            Lane(
                f"streamkit-publisher:{stream}:lane-{i}",
                sender,
                max_batch=config.max_batch,
                max_bytes=config.max_bytes,
                linger=config.linger,
                on_settled=self._release,
            )
            for i in range(config.max_in_flight)
        ]
        self._buffered = 0
        self._buffered_bytes = 0
        self._space = asyncio.Event()
        self._progress = asyncio.Event()
        self._started = False
        self._closed = False
        self._close_done: asyncio.Event | None = None
        self._settling_task: asyncio.Task[object] | None = None

    @property
    def buffered(self) -> int:
        """Events published but not yet settled (queued or in flight)."""
        return self._buffered

    @property
    def buffered_bytes(self) -> int:
        """Encoded bytes of the `buffered` events."""
        return self._buffered_bytes

    @property
    def closed(self) -> bool:
        """True once `close` has been called."""
        return self._closed

    async def publish(
        self,
        *items: Publishable,
        on_ack: AckCallback | None = None,
        on_nack: NackCallback | None = None,
        block: bool = True,
    ) -> None:
        """Queue events and return once they are queued (not stored).

        Events are queued one by one in order, each waiting for buffer space;
        cancelling a waiting call leaves the events queued before it queued (and
        settled later) and the rest untouched. With ``block=False`` the call
        queues all its events or, raising `QueueFull`, none (async iterables are
        drained first). Called from one of this publisher's callbacks it never
        waits (it would wait for itself): a full buffer raises `QueueFull`.
        """
        self._check_open()
        if not block:
            self._put_now(await _collect(items), on_ack, on_nack)
            return
        for item in items:
            if isinstance(item, Event):
                await self._put([item], on_ack, on_nack)
            elif isinstance(item, AsyncIterable):
                async for event in item:
                    await self._put([event], on_ack, on_nack)
            elif isinstance(item, Iterable):
                await self._put(item, on_ack, on_nack)
            else:
                raise TypeError(f"publish() takes events, not {type(item).__name__}")

    def flush(self, timeout: float | None = None) -> Awaitable[None]:
        """Wait until every event published so far is acked or nacked (callbacks run).

        What "so far" means is fixed when ``flush()`` is called, before it is
        awaited. Raises `streamkit.TimeoutError` after ``timeout`` seconds; the
        events stay queued. Calling it from this publisher's own callbacks raises
        `RuntimeError`: it would wait for the callback itself.
        """
        if self._in_callback():
            raise RuntimeError("flush() called from a publish callback would wait for itself")
        targets = [lane.queued for lane in self._lanes]
        for lane in self._lanes:
            lane.hurry()
        return self._wait_settled(targets, timeout)

    async def close(self, timeout: float | None = None) -> None:
        """Stop accepting events, flush within ``timeout``, nack the rest (code ``closed``).

        Calls blocked in `publish` raise `ClientClosed`; the background tasks are
        cancelled and awaited. Not callable from this publisher's callbacks.
        """
        if self._in_callback():
            raise RuntimeError("close() called from a publish callback would wait for itself")
        if self._close_done is not None:
            await self._close_done.wait()
            return
        self._close_done = asyncio.Event()
        self._closed = True
        self._space.set()
        try:
            if self._buffered:
                try:
                    await self.flush(timeout)
                except errors.TimeoutError:
                    log.warning("closing %r: %d event(s) unsent", self.stream, self.buffered)
        finally:
            self._settling_task = asyncio.current_task()  # runs the nack callbacks below
            try:
                for lane in self._lanes:
                    await lane.stop()
            finally:
                self._settling_task = None
                self._close_done.set()

    # Internals.

    def _check_open(self) -> None:
        if self._closed:
            raise errors.ClientClosed(f"the publisher of {self.stream!r} is closed")

    def _start(self) -> None:
        for lane in self._lanes:
            lane.start()
        self._started = True

    def _fits(self, count: int, size: int) -> bool:
        # An empty buffer takes any one event, so an event larger than the byte
        # bound still goes through (alone) instead of waiting forever.
        return (self._buffered == 0 and count == 1) or (
            self._buffered + count <= self.config.max_buffer
            and self._buffered_bytes + size <= self.config.max_buffer_bytes
        )

    async def _put(
        self, events: Iterable[Event], on_ack: AckCallback | None, on_nack: NackCallback | None
    ) -> None:
        """Queue ``events`` in order, waiting for space before each that does not fit.

        After every `YIELD_EVENTS` events or request's worth of bytes (``max_bytes``)
        it lets the loop run: the lanes read their answers and send their next
        batches while the rest is encoded, and other tasks are not held up until
        the buffer is full.
        """
        self._check_open()  # an async iterable may have awaited across a close
        enqueue, encode = self._enqueue, self._encode
        max_buffer, max_bytes = self.config.max_buffer, self.config.max_buffer_bytes
        request_bytes, count, unyielded = self.config.max_bytes, 0, 0
        for event in events:
            if not isinstance(event, Event):
                raise TypeError(f"publish() takes events, not {type(event).__name__}")
            message, data, size = encode(event)
            # Inline, the usual answer of _fits (room to spare); else ask it, and wait.
            if not (self._buffered < max_buffer and self._buffered_bytes + size <= max_bytes):
                while not self._fits(1, size):
                    await self._wait_for_space()
                    count = unyielded = 0  # the wait let the loop run
            enqueue(event, message, data, size, on_ack, on_nack)
            count += 1
            unyielded += size
            if count >= YIELD_EVENTS or unyielded >= request_bytes:
                count = unyielded = 0
                await asyncio.sleep(0)
                self._check_open()

    def _put_now(
        self, events: list[Event], on_ack: AckCallback | None, on_nack: NackCallback | None
    ) -> None:
        """Queue all of ``events`` at once, or raise `QueueFull` and queue none."""
        self._check_open()
        for event in events:
            if not isinstance(event, Event):
                raise TypeError(f"publish() takes events, not {type(event).__name__}")
            if event.publishing:
                raise errors.StreamkitError(f"event {event.id} is already being published")
        if len({id(event) for event in events}) != len(events):
            raise ValueError("the same event is published twice in one call")
        encoded = [self._encode(event) for event in events]
        if events and not self._fits(len(events), sum(size for _, _, size in encoded)):
            raise errors.QueueFull(
                f"the publish buffer of {self.stream!r} is full "
                f"({self._buffered} events, {self._buffered_bytes} bytes)"
            )
        for event, (message, data, size) in zip(events, encoded, strict=True):
            self._enqueue(event, message, data, size, on_ack, on_nack)

    def _encode(self, event: Event) -> tuple[str, bytes | None, int]:
        """``event``'s message for ``POST .../messages``, as it is now: what is sent. Large
        data goes apart, as bytes, unless the server is known not to take split bodies
        (`split`; the API asks before the first one goes, and joins it into JSON again
        for a server that does not). And their size in UTF-8 bytes, which batching and
        the buffer bound count."""
        # Here, in the publishing caller's task: its trace context, not the lane's.
        if trace := tracing.context_headers():
            event.headers.update(trace)
        wire = event.to_wire(self.stream)
        if len(wire["data"]) < split.SPLIT_DATA_CHARS or self.api.takes_split is False:
            message = orjson.dumps(wire).decode()
            return message, None, utf8_size(message)
        data = wire.pop("data").encode()
        wire[split.DATA_SIZE] = len(data)
        message = orjson.dumps(wire).decode()
        return message, data, utf8_size(message) + len(data)

    def _enqueue(
        self,
        event: Event,
        message: str,
        data: bytes | None,
        size: int,
        on_ack: AckCallback | None,
        on_nack: NackCallback | None,
    ) -> None:
        """Track ``event`` (``message`` its encoding, ``data`` its data when apart, ``size``
        their UTF-8 bytes) and queue it in its key's lane. Never awaits, so it is atomic."""
        if not self._started:
            self._start()
        lanes = self._lanes
        lanes[hash(event.key or self.stream) % len(lanes)].put(
            QueuedEvent(event, message, data, size, on_ack, on_nack)
        )
        self._buffered += 1
        self._buffered_bytes += size

    def _in_callback(self) -> bool:
        """True when called from one of this publisher's on_ack / on_nack callbacks."""
        task = asyncio.current_task()
        return task is self._settling_task or any(lane.runs(task) for lane in self._lanes)

    async def _wait_for_space(self) -> None:
        if self._in_callback():
            # Space is freed once the callbacks of a batch have run: waiting here
            # could wait forever.
            raise errors.QueueFull(
                f"the publish buffer of {self.stream!r} is full, and a publish callback "
                "cannot wait for space"
            )
        self._space.clear()
        await self._space.wait()
        self._check_open()

    def _release(self, count: int, size: int) -> None:
        """Called by a lane when ``count`` events of ``size`` bytes are settled."""
        self._buffered -= count
        self._buffered_bytes -= size
        self._space.set()
        self._progress.set()

    async def _wait_settled(self, targets: list[int], timeout: float | None) -> None:
        try:
            await asyncio.wait_for(self._settled(targets), timeout)
        except asyncio.TimeoutError:
            raise errors.TimeoutError(
                f"flush of {self.stream!r} timed out after {timeout}s "
                f"with {self._buffered} event(s) not yet acked or nacked"
            ) from None

    async def _settled(self, targets: list[int]) -> None:
        while any(lane.settled < target for lane, target in zip(self._lanes, targets, strict=True)):
            self._progress.clear()
            await self._progress.wait()


async def _collect(items: tuple[Publishable, ...]) -> list[Event]:
    events: list[Event] = []
    for item in items:
        if isinstance(item, Event):
            events.append(item)
        elif isinstance(item, AsyncIterable):
            events.extend([event async for event in item])
        elif isinstance(item, Iterable):
            events.extend(item)
        else:
            raise TypeError(f"publish() takes events, not {type(item).__name__}")
    return events
