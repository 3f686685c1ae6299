"""A thin blocking facade over `AsyncClient`, for scripts and REPLs.

``streamkit.sync.Client`` runs an `AsyncClient` on a private event loop in a
background thread and exposes the same method names as plain functions::

    with streamkit.sync.Client() as client:
        client.create_stream("orders", exist_ok=True)
        client.publish("orders", Event({"id": 1}))
        client.flush()
        for event in client.subscribe("orders", consumer="billing"):
            event.ack()

The async API is the product; this one is for code that cannot await.

Ctrl-C (or a ``timeout``) while a call blocks cancels the coroutine on the
loop and waits for it to stop before the ``KeyboardInterrupt`` goes on, so
leaving a ``for event in client.subscribe(...)`` loop that way closes the
iterator cleanly (events handed out but not acked are given back).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Generator, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar

from streamkit.client import AsyncClient, connect
from streamkit.models import Ack, Consumer, Event, Stream
from streamkit.protocol.wire import StartPosition
from streamkit.publisher import AckCallback, NackCallback
from streamkit.reads.catchup import FORWARD, Direction
from streamkit.reads.dead_letters import DeadLetter

T = TypeVar("T")

STOP_TIMEOUT = 10.0
"""How long an interrupted call may take to stop on the loop."""


async def _next(aiter: AsyncIterator[T]) -> T:
    return await aiter.__anext__()


class _Call(Generic[T]):
    """One coroutine run on the facade's loop, which the calling thread can stop."""

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        self._task: asyncio.Task[Any] | None = None
        self._abandoned = False

    async def run(self) -> T:
        if self._abandoned:  # cancelled before it started
            self._coro.close()
            raise asyncio.CancelledError
        self._task = asyncio.current_task()
        return await self._coro

    async def stopped(self) -> None:
        """Wait until the cancelled call has ended (or make sure it never starts)."""
        if self._task is None:
            self._abandoned = True
            self._coro.close()
        else:
            await asyncio.wait([self._task])


class SyncEvent:
    """A received event whose `ack`, `nack` and `extend` block instead of awaiting."""

    def __init__(self, event: Event, client: Client) -> None:
        self.event = event
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.event, name)

    def __repr__(self) -> str:
        return repr(self.event)

    def ack(self) -> None:
        """Acknowledge the event (see `Event.ack`)."""
        self._client._run(self.event.ack())

    def nack(self, delay: float | None = None) -> None:
        """Give the event back (see `Event.nack`)."""
        self._client._run(self.event.nack(delay))

    def extend(self) -> None:
        """Reset the event's ack deadline (see `Event.extend`)."""
        self._client._run(self.event.extend())


class Client:
    """A blocking streamkit client; takes the same arguments as `streamkit.connect`."""

    def __init__(self, url: str | None = None, **options: Any) -> None:
        self._async: AsyncClient = connect(url, **options)  # a bad URL raises before the thread
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="streamkit-sync-loop", daemon=True
        )
        self._thread.start()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        call = _Call(coro)
        future = asyncio.run_coroutine_threadsafe(call.run(), self._loop)
        try:
            return future.result(timeout)
        except BaseException:
            if future.cancel():  # Ctrl-C or the timeout, while the call still runs: stop it first
                stopping = asyncio.run_coroutine_threadsafe(call.stopped(), self._loop)
                stopping.result(STOP_TIMEOUT)
            raise

    def _iterate(self, aiter: AsyncIterator[Any], wrap: bool = False) -> Generator[Any, None, None]:
        try:
            while True:
                try:
                    item = self._run(_next(aiter))
                except StopAsyncIteration:
                    return
                yield SyncEvent(item, self) if wrap else item
        finally:
            aclose = getattr(aiter, "aclose", None)
            if aclose is not None and not self._loop.is_closed():
                self._run(aclose())

    def close(self) -> None:
        """Flush, close the async client, and stop the loop thread."""
        if self._loop.is_closed():
            return
        try:
            self._run(self._async.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def ping(self) -> dict[str, Any]:
        """See `AsyncClient.ping`."""
        return self._run(self._async.ping())

    def create_stream(self, name: str, **options: Any) -> Stream:
        """See `AsyncClient.create_stream`."""
        return self._run(self._async.create_stream(name, **options))

    def update_stream(self, stream: str, **limits: Any) -> Stream:
        """See `AsyncClient.update_stream`."""
        return self._run(self._async.update_stream(stream, **limits))

    def get_stream(self, stream: str) -> Stream:
        """See `AsyncClient.get_stream`."""
        return self._run(self._async.get_stream(stream))

    def list_streams(self) -> list[Stream]:
        """See `AsyncClient.list_streams`."""
        return self._run(self._async.list_streams())

    def delete_stream(self, stream: str, *, missing_ok: bool = False) -> None:
        """See `AsyncClient.delete_stream`."""
        self._run(self._async.delete_stream(stream, missing_ok=missing_ok))

    def create_consumer(
        self, stream: str, name: str, filter: str = ">", **options: Any
    ) -> Consumer:
        """See `AsyncClient.create_consumer`."""
        return self._run(self._async.create_consumer(stream, name, filter, **options))

    def get_consumer(self, stream: str, consumer: str) -> Consumer:
        """See `AsyncClient.get_consumer`."""
        return self._run(self._async.get_consumer(stream, consumer))

    def list_consumers(self, stream: str) -> list[Consumer]:
        """See `AsyncClient.list_consumers`."""
        return self._run(self._async.list_consumers(stream))

    def delete_consumer(self, stream: str, consumer: str, *, missing_ok: bool = False) -> None:
        """See `AsyncClient.delete_consumer`."""
        self._run(self._async.delete_consumer(stream, consumer, missing_ok=missing_ok))

    def send(self, stream: str, events: Iterable[Event]) -> list[Ack]:
        """See `AsyncClient.send`."""
        return self._run(self._async.send(stream, list(events)))

    def publish(
        self,
        stream: str,
        *events: Event | Iterable[Event],
        on_ack: AckCallback | None = None,
        on_nack: NackCallback | None = None,
    ) -> None:
        """Queue events (see `AsyncClient.publish`); callbacks run on the loop thread."""
        self._run(self._async.publish(stream, *events, on_ack=on_ack, on_nack=on_nack))

    def flush(self, timeout: float | None = 2.0) -> None:
        """See `AsyncClient.flush`."""
        self._run(self._async.flush(timeout))

    def get(
        self,
        stream: str,
        *,
        max_count: int = 100,
        from_seq: int | None = None,
        direction: Direction = FORWARD,
        key_pattern: str | None = None,
        from_time: datetime | None = None,
    ) -> list[Event]:
        """See `AsyncClient.get`."""
        return self._run(
            self._async.get(
                stream,
                max_count=max_count,
                from_seq=from_seq,
                direction=direction,
                key_pattern=key_pattern,
                from_time=from_time,
            )
        )

    def iter(self, stream: str, **options: Any) -> Generator[Event, None, None]:
        """See `AsyncClient.iter`."""
        return self._iterate(self._async.iter(stream, **options))

    def tail(
        self, stream: str, key_pattern: str | None = None, from_seq: int | None = None
    ) -> Generator[Event, None, None]:
        """See `AsyncClient.tail`; an endless iterator, stop it with ``break``."""
        return self._iterate(self._async.tail(stream, key_pattern, from_seq))

    def subscribe(
        self,
        *streams: str,
        consumer: str | None = None,
        start: StartPosition | None = None,
        **options: Any,
    ) -> Generator[SyncEvent, None, None]:
        """See `AsyncClient.subscribe`; yields events whose ack/nack block."""
        subscription = self._async.subscribe(*streams, consumer=consumer, start=start, **options)
        return self._iterate(aiter(subscription), wrap=True)

    def dead_letters(self, stream: str, consumer: str) -> Generator[DeadLetter, None, None]:
        """See `AsyncClient.dead_letters`."""
        return self._iterate(self._async.dead_letters(stream, consumer))

    def redrive(self, stream: str, consumer: str, seqs: Iterable[int] | None = None) -> int:
        """See `AsyncClient.redrive`."""
        return self._run(self._async.redrive(stream, consumer, seqs))

    def discard_dead(self, stream: str, consumer: str, seqs: Iterable[int] | None = None) -> int:
        """See `AsyncClient.discard_dead`."""
        return self._run(self._async.discard_dead(stream, consumer, seqs))

    def reset_consumer(self, stream: str, consumer: str, start: StartPosition) -> Consumer:
        """See `AsyncClient.reset_consumer`."""
        return self._run(self._async.reset_consumer(stream, consumer, start))
