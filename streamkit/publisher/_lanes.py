"""A lane: one ordered queue of a stream's published events and the task that drains it.

The publisher hashes each event's key to one of its lanes. A lane sends one
batch at a time and only starts the next when every event of the previous one is
settled, retries included, so events of one key are stored in the order they
were published. Several lanes give several batches in flight.

Without a linger time a lane with nothing in flight sends what it holds as soon
as its task runs, and the events that arrive while a batch is in flight form
the next one (Nagle's algorithm with the request in flight as the timer): a
lone event waits for nothing, and batches grow with the rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from collections.abc import Callable

from streamkit.publisher._sender import CLOSED, INTERNAL, BatchSender, QueuedEvent, nack_events

log = logging.getLogger(__name__)


class Lane:
    """Batches queued events by count, bytes and (if above 0) linger time; sends them one
    batch at a time.

    ``on_settled(count, size)`` is called after each batch with how many events
    (and wire bytes) left the lane for good, acked or nacked.
    """

    def __init__(
        self,
        name: str,
        sender: BatchSender,
        *,
        max_batch: int,
        max_bytes: int,
        linger: float,
        on_settled: Callable[[int, int], None],
    ) -> None:
        self.name = name
        self.sender = sender
        self.max_batch = max_batch
        self.max_bytes = max_bytes
        self.linger = linger
        self.on_settled = on_settled
        self.queued = 0
        """Events ever put in this lane."""
        self.settled = 0
        """Events ever settled, counted a whole batch at a time so it never runs ahead."""
        self._queue: deque[QueuedEvent] = deque()
        self._queue_bytes = 0
        self._taken = 0  # events ever moved from the queue into a batch
        self._due_at = 0.0  # loop time the oldest queued event stops lingering
        self._hurry_until = 0  # events up to this count are sent without lingering
        self._in_flight: list[QueuedEvent] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the lane's task (in the running loop)."""
        if self._task is None:
            # In a context of its own: the lane serves every caller, not only the one whose
            # publish started it (its send spans must not be children of that caller's span).
            loop = asyncio.get_running_loop()
            self._task = contextvars.Context().run(loop.create_task, self._run(), name=self.name)

    def runs(self, task: asyncio.Task[object] | None) -> bool:
        """True if ``task`` is this lane's task (so a callback of this lane is running)."""
        return task is not None and task is self._task

    def put(self, queued: QueuedEvent) -> None:
        """Queue one event; never blocks (the publisher bounds the buffer)."""
        queue = self._queue
        if not queue:
            if self.linger:
                self._due_at = asyncio.get_running_loop().time() + self.linger
            self._wake.set()
        queue.append(queued)
        self.queued += 1
        self._queue_bytes += queued.size
        if len(queue) >= self.max_batch or self._queue_bytes >= self.max_bytes:
            self._wake.set()

    def hurry(self) -> None:
        """Send what is queued now without waiting for the linger time (used by flush)."""
        self._hurry_until = self.queued
        self._wake.set()

    async def stop(self) -> None:
        """Cancel the task and nack every event still queued or in flight (code ``closed``)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        unsent = [*self._in_flight, *self._queue]
        size = sum(p.size for p in unsent)
        self._in_flight, self._queue, self._queue_bytes = [], deque(), 0
        await nack_events(unsent, CLOSED, "the publisher closed before the event was stored")
        self.settled += len(unsent)
        self.on_settled(len(unsent), size)

    async def _run(self) -> None:
        while True:
            await self._ready()
            batch, size = self._take_batch()
            self._in_flight = batch
            try:
                await self.sender.deliver(batch)
            except Exception as exc:  # a bug must not stop the lane: settle and go on
                log.exception("%s: delivering a batch failed", self.name)
                await nack_events(batch, INTERNAL, repr(exc))
            self._in_flight = []
            self.settled += len(batch)
            self.on_settled(len(batch), size)

    async def _ready(self) -> None:
        """Return when a batch should go: full, lingered long enough, or hurried."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if (
                not self.linger
                or len(self._queue) >= self.max_batch
                or self._queue_bytes >= self.max_bytes
                or self._taken < self._hurry_until
            ):
                return
            delay = self._due_at - loop.time()
            if delay <= 0:
                return
            self._wake.clear()
            timer = loop.call_later(delay, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()

    def _take_batch(self) -> tuple[list[QueuedEvent], int]:
        queue = self._queue
        if len(queue) <= self.max_batch and self._queue_bytes <= self.max_bytes:
            batch, size = list(queue), self._queue_bytes  # all of it: the usual case
            queue.clear()
        else:
            batch, size = self._take_first()
        self._queue_bytes -= size
        self._taken += len(batch)
        # What stays behind has waited at least as long as this batch: no more lingering.
        self._due_at = 0.0
        return batch, size

    def _take_first(self) -> tuple[list[QueuedEvent], int]:
        """The oldest queued events that fit in one batch (at least one)."""
        queue, size = self._queue, 0
        batch: list[QueuedEvent] = []
        while queue and len(batch) < self.max_batch:
            item_size = queue[0].size
            if batch and size + item_size > self.max_bytes:
                break
            batch.append(queue.popleft())
            size += item_size
        return batch, size
