"""`Batch`: the events of one receive, handed out together and settled in one go."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, overload

from streamkit.models import Event


class BatchSettler(Protocol):
    """What a batch asks to settle its events (implemented by a subscription)."""

    async def settle_batch(
        self,
        stream: str,
        events: Sequence[Event],
        *,
        nack: bool,
        delay: float | None,
        reason: str | None,
    ) -> None: ...


class Batch(Sequence[Event]):
    """The events of one stream received in one request, from `Subscription.batches`.

    A sequence of events (``len``, indexing, iteration). ``await batch.ack()``
    acks every event of it not settled yet, as one run of ack ids: at most
    ``batch_size`` ids, which one ack request holds. Events can still be
    settled one by one (``await event.nack()``) before the batch is; settling
    an event twice is a no-op, so ``batch.ack()`` then acks the rest.
    """

    __slots__ = ("_events", "_settler", "stream")

    def __init__(self, stream: str, events: list[Event], settler: BatchSettler) -> None:
        self.stream = stream
        """The stream the events come from."""
        self._events = events
        self._settler = settler

    def __repr__(self) -> str:
        return f"<Batch stream={self.stream!r} events={len(self._events)}>"

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Event]: ...
    def __getitem__(self, index: int | slice) -> Event | Sequence[Event]:
        return self._events[index]

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    @property
    def settled(self) -> bool:
        """True once every event of the batch is acked, nacked or given back."""
        return all(event.delivery is None or event.delivery.settled for event in self._events)

    async def ack(self) -> None:
        """Ack every event of the batch not settled yet (queued and sent at once)."""
        await self._settler.settle_batch(
            self.stream, self._events, nack=False, delay=None, reason=None
        )

    async def nack(self, delay: float | None = None, *, reason: str | None = None) -> None:
        """Give back every event of the batch not settled yet, to be delivered again
        after ``delay`` seconds, with ``reason`` as their last error."""
        if delay is not None and delay < 0:
            raise ValueError("delay must be >= 0")
        await self._settler.settle_batch(
            self.stream, self._events, nack=True, delay=delay, reason=reason
        )
