"""`Prefetcher`: long-polls each stream's consumer into small bounded buffers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping

from streamkit._http.api import API
from streamkit._http.received import Received
from streamkit._http.retry import Backoff, retriable
from streamkit.subscriber._attachment import Attachment

log = logging.getLogger(__name__)

OnBatch = Callable[[Received], None]
"""Called with each batch the moment it arrives, before anything can await."""


class Prefetcher:
    """One named task per stream long-polls ``receive`` while the handler works.

    Each stream's task keeps at most ``prefetch`` batches buffered, and waits
    for room before it polls again. `next_batch` takes batches round-robin
    across the streams that have some, so a busy stream cannot starve a quiet
    one. Failures that heal (lost connection, restart, overload) are retried
    with capped, jittered backoff for as long as the prefetcher runs; the first
    failure that will not heal is kept and raised by `next_batch`.

    ``attachments`` names the consumer of each stream, in the order the
    streams take turns. ``on_batch(received)`` sees every non-empty batch as
    soon as it is received.
    """

    def __init__(
        self,
        api: API,
        attachments: Mapping[str, Attachment],
        *,
        batch_size: int,
        wait_for: float,
        prefetch: int,
        on_batch: OnBatch,
        backoff: Callable[[], Backoff] = Backoff,
        name: str = "streamkit-prefetch",
    ) -> None:
        self.api = api
        self.attachments = attachments
        self.batch_size = batch_size
        self.wait_for = wait_for
        self.prefetch = prefetch
        self.on_batch = on_batch
        self.name = name
        self._backoff = backoff
        self._streams: deque[str] = deque(attachments)
        self._buffers: dict[str, deque[Received]] = {s: deque() for s in attachments}
        self._room: dict[str, asyncio.Event] = {s: asyncio.Event() for s in attachments}
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False
        self.error: Exception | None = None
        """The failure that will not heal, once one happened."""

    @property
    def buffered(self) -> int:
        """Events received and not yet taken by `next_batch`."""
        return sum(len(batch) for buffer in self._buffers.values() for batch in buffer)

    # Lifecycle.

    def start(self) -> None:
        """Start one polling task per stream."""
        if self._tasks or self._stopped:
            return
        for stream in self._streams:
            task = asyncio.create_task(self._poll(stream), name=f"{self.name}:{stream}")
            self._tasks.append(task)

    async def stop(self) -> None:
        """Stop polling and drop what is buffered (its leases say what it was);
        `next_batch` returns None."""
        self._stopped = True
        self._ready.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for buffer in self._buffers.values():
            buffer.clear()

    # The consuming side.

    async def next_batch(self) -> Received | None:
        """The next buffered batch, waiting for one; None once stopped.

        Raises the failure that will not heal as soon as there is one: the
        stream or consumer it concerns is gone, and so are its deliveries.
        """
        while True:
            if self._stopped:
                return None
            if self.error is not None:
                raise self.error
            streams = self._streams
            for _ in range(len(streams)):
                stream = streams[0]
                streams.rotate(-1)
                buffer = self._buffers[stream]
                if buffer:
                    self._room[stream].set()
                    return buffer.popleft()
            self._ready.clear()
            await self._ready.wait()

    # The tasks.

    async def _poll(self, stream: str) -> None:
        buffer = self._buffers[stream]
        room = self._room[stream]
        backoff = self._backoff()
        consumer = self.attachments[stream].consumer
        while True:
            while len(buffer) >= self.prefetch:
                room.clear()
                await room.wait()
            try:
                received = await self.api.receive_batch(
                    stream,
                    consumer,
                    batch_size=self.batch_size,
                    wait_for=self.wait_for,
                )
            except Exception as exc:  # a bug must end the loop, not leave it waiting silently
                if not retriable(exc, resend_safe=True):
                    log.debug("%s: %r failed for good: %r", self.name, stream, exc)
                    self.error = exc
                    self._ready.set()
                    return
                log.log(
                    logging.WARNING if backoff.failures == 0 else logging.DEBUG,
                    "%s: receiving from %r failed (%r); reconnecting",
                    self.name,
                    stream,
                    exc,
                )
                await backoff.wait(exc)
                continue
            if backoff.failures:
                log.info("%s: receiving from %r again", self.name, stream)
                backoff.reset()
            if received:
                self.on_batch(received)
                buffer.append(received)
                self._ready.set()
