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
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any

from streamkit._http.api import API
from streamkit.errors import ClientClosed, StreamkitError
from streamkit.models import Event
from streamkit.protocol.wire import StartPosition
from streamkit.subscriber._acker import Acker
from streamkit.subscriber._leaser import Leaser
from streamkit.subscriber._prefetcher import Prefetcher

__all__ = ["Subscription"]

log = logging.getLogger(__name__)


class _Settled:
    """The acknowledger of an event already acked, nacked or given back: settling is a no-op."""

    async def ack(self, event: Event) -> None:
        return None

    async def nack(self, event: Event, delay: float | None) -> None:
        return None

    async def extend(self, event: Event) -> None:
        return None


_SETTLED = _Settled()


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
    - Until it is settled, an event's ack deadline is renewed in the background,
      for at most ``max_lease`` seconds.
    - Lost connections and server restarts are retried with backoff for as
      long as the subscription is open; failures that cannot heal (a deleted
      stream or consumer, a bad key, a refused API key) raise out of the loop.
    - Closing stops polling, nacks every event received and not acked (handed
      out or still buffered), sends every queued ack and nack (for up to
      ``close_timeout`` seconds), and deletes ephemeral consumers.

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
    ) -> None:
        if not streams:
            raise ValueError("a subscription needs at least one stream")
        if len(set(streams)) != len(streams):
            raise ValueError(f"streams are listed more than once: {list(streams)}")
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be within 1..1000")
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
        self._on_close = on_close
        self.consumers: dict[str, str] = {}
        """Each stream's consumer name (the generated ones when ephemeral)."""
        self.ack_waits: dict[str, float] = {}
        """Each stream's consumer's ack deadline, in seconds."""
        self._lease_deadlines: dict[str, float] = {}
        self._prefetcher = Prefetcher(
            api,
            self.streams,
            self.consumers,
            batch_size=batch_size,
            wait_for=wait_for,
            prefetch=prefetch,
            on_batch=self._received,
        )
        self._acker = Acker(api, self.consumers, interval=ack_interval)
        self._leaser = Leaser(api, self.consumers, self._lease_deadlines, max_lease=max_lease)
        self._leases = self._leaser.leases
        self._start_lock = asyncio.Lock()
        self._started = False
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None

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
    def held(self) -> int:
        """Deliveries received and not yet settled (buffered or handed out)."""
        return len(self._leaser)

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
            for stream in self.streams:
                await self._attach(stream)
            self._acker.start()
            self._leaser.start()
            self._prefetcher.start()

    async def _attach(self, stream: str) -> None:
        if self.consumer is not None:
            found = await self.api.get_consumer(stream, self.consumer)
            self.consumers[stream] = self.consumer
            self.ack_waits[stream] = self._lease_deadlines[stream] = found.ack_wait_ms / 1000
            return
        name = f"sub-{uuid.uuid4().hex}"
        options: dict[str, Any] = {
            "filter_key_pattern": self.filter or ">",
            "start": self.start_at,
            "ephemeral": True,
            "inactive_threshold_ms": int(self.inactive_threshold * 1000),
        }
        created = await self.api.create_consumer(stream, name, options)
        self.consumers[stream] = name
        self.ack_waits[stream] = created.ack_wait_ms / 1000
        # The server deletes an ephemeral consumer nobody polls, acks or extends for
        # inactive_threshold; a handler slow enough to fill the buffers stops the polls,
        # so the leaser's renewals must then come often enough to keep it alive.
        self._lease_deadlines[stream] = min(self.ack_waits[stream], self.inactive_threshold)

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
        await self._prefetcher.stop()
        await self._leaser.stop()
        held = self._leaser.pop_all()
        for lease in held:
            lease.event._acker = _SETTLED
            self._acker.nack(lease.stream, lease.event.ack_id or "")
        if held:
            log.debug("%r: gave back %d unsettled deliveries", self, len(held))
        await self._acker.stop(self.close_timeout)
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
            leases = self._leases
            while True:
                batch = await self._prefetcher.next_batch()
                if batch is None:
                    return
                for event in batch:
                    if self._closing:
                        return
                    if event.ack_id in leases:  # else its lease was dropped: it is stale
                        yield event
        finally:
            await self.aclose()

    def _received(self, stream: str, events: list[Event]) -> None:
        for event in events:
            event._acker = self
        self._leaser.add(stream, events, asyncio.get_running_loop().time())

    # The Acknowledger protocol, behind Event.ack() / nack() / extend().

    async def ack(self, event: Event) -> None:
        """Queue an ack for ``event`` (use ``await event.ack()``)."""
        stream, ack_id = event.stream, event.ack_id  # the hot path: no helper calls
        if stream is None or ack_id is None:
            raise StreamkitError(f"{event!r} was not received from a subscription")
        self._leases.pop(ack_id, None)
        event._acker = _SETTLED
        try:
            self._acker.ack(stream, ack_id)
        except ClientClosed:
            await self._settle_late(stream, ack_id)

    async def nack(self, event: Event, delay: float | None) -> None:
        """Queue a nack: redeliver ``event`` after ``delay`` seconds (``await event.nack()``)."""
        if delay is not None and delay < 0:
            raise ValueError("delay must be >= 0")
        stream, ack_id = _delivery(event)
        self._leaser.remove(ack_id)
        event._acker = _SETTLED
        try:
            self._acker.nack(stream, ack_id, delay)
        except ClientClosed:
            await self._settle_late(stream, ack_id, nack=True, delay=delay)

    async def _settle_late(
        self, stream: str, ack_id: str, *, nack: bool = False, delay: float | None = None
    ) -> None:
        # Only an event whose lease was dropped (max_lease) gets here: the close gave
        # back every other one. Its ack id may still be good, so send it on its own.
        if self.ephemeral:
            return  # the consumer was deleted with the subscription
        if nack:
            await self.api.nack(stream, self.consumers[stream], [ack_id], delay)
        else:
            await self.api.ack(stream, self.consumers[stream], [ack_id])

    async def extend(self, event: Event) -> None:
        """Reset ``event``'s ack deadline now (``await event.extend()``)."""
        stream, ack_id = _delivery(event)
        if self._closing:
            raise ClientClosed("the subscription is closed")
        await self.api.extend(stream, self.consumers[stream], [ack_id])


def _delivery(event: Event) -> tuple[str, str]:
    if event.stream is None or event.ack_id is None:
        raise StreamkitError(f"{event!r} was not received from a subscription")
    return event.stream, event.ack_id
