"""A consumer's dead letters, read page by page: what ran out of deliveries, and why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from streamkit._http.api import API
from streamkit.models import Event
from streamkit.protocol.wire import MAX_BATCH


@dataclass(frozen=True)
class DeadLetter:
    """An event a consumer gave up on after ``max_deliver`` deliveries.

    ``delivery_count`` is how many times it was delivered; ``last_error`` is the
    last failure the server recorded for it, when its engine keeps one (None
    otherwise). The event has no ack id: act on it with ``client.redrive`` or
    ``client.discard_dead`` by its `seq`.
    """

    event: Event
    delivery_count: int
    last_error: str | None = None

    @property
    def seq(self) -> int | None:
        """The event's seq in its stream."""
        return self.event.seq


async def iterate_dead(
    api: API, stream: str, consumer: str, *, batch_size: int = 100
) -> AsyncIterator[DeadLetter]:
    """Every dead letter of ``consumer``, by seq, a page of ``batch_size`` at a time."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
    after = 0
    while True:
        page = await api.dead_letters(stream, consumer, limit=batch_size, after_seq=after)
        for event, count, error in page:
            yield DeadLetter(event, count, error)
        last = page[-1][0].seq if page else None
        if len(page) < batch_size or last is None or last <= after:
            return
        after = last
