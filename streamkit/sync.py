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
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Generator, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from streamkit.client import AsyncClient, connect
from streamkit.models import Ack, Consumer, Event, Stream
from streamkit.protocol.wire import StartPosition
from streamkit.publisher import AckCallback, NackCallback
from streamkit.reads.catchup import FORWARD, Direction
from streamkit.reads.dead_letters import DeadLetter

T = TypeVar("T")


async def _next(aiter: AsyncIterator[T]) -> T:
    return await aiter.__anext__()


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
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="streamkit-sync-loop", daemon=True
        )
        self._thread.start()
        self._async: AsyncClient = connect(url, **options)

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
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

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
