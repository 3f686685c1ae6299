"""Catch-up reads (photon-pump's ``get`` and ``iter``): pages of stored events, forward or backward.

``iter(..., follow=True)`` reads the history and then keeps long-polling for new
events from the same cursor, so the switch from history to live has no gap and
no duplicate.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from streamkit._http.api import API
from streamkit.models import Event
from streamkit.protocol.wire import MAX_BATCH

"""The most events the server returns in one page."""


class Direction(str, enum.Enum):
    """Which way a read walks a stream."""

    FORWARD = "forward"
    BACKWARD = "backward"


FORWARD = Direction.FORWARD
BACKWARD = Direction.BACKWARD


def _bounds(from_seq: int | None, direction: Direction) -> tuple[int | None, int | None]:
    """(after_seq, before_seq) for a read that starts at ``from_seq`` inclusive."""
    if from_seq is None:
        return None, None
    if direction is Direction.FORWARD:
        return max(from_seq - 1, 0), None
    return None, from_seq + 1


async def get(
    api: API,
    stream: str,
    *,
    max_count: int = 100,
    from_seq: int | None = None,
    direction: Direction = FORWARD,
    key_pattern: str | None = None,
    model: type[Any] | None = None,
    from_time: datetime | None = None,
) -> list[Event]:
    """Up to ``max_count`` events starting at ``from_seq`` (inclusive) or at the first
    stored at or after ``from_time``, in ``direction`` order.

    With ``model``, each event's `Event.decode` builds that class by default."""
    if max_count < 1:
        raise ValueError("max_count must be at least 1")
    events: list[Event] = []
    async for event in iterate(
        api,
        stream,
        from_seq=from_seq,
        direction=direction,
        key_pattern=key_pattern,
        batch_size=min(max_count, MAX_BATCH),
        model=model,
        from_time=from_time,
    ):
        events.append(event)
        if len(events) == max_count:
            break
    return events


async def iterate(
    api: API,
    stream: str,
    *,
    from_seq: int | None = None,
    direction: Direction = FORWARD,
    key_pattern: str | None = None,
    batch_size: int = 500,
    follow: bool = False,
    wait_for: float = 5.0,
    model: type[Any] | None = None,
    from_time: datetime | None = None,
) -> AsyncIterator[Event]:
    """Every event from ``from_seq`` to the end (or the start, backward), page by page.

    ``from_time`` (forward only, not with ``from_seq``) starts at the first event
    stored at or after that time: the server finds its seq, and the pages after
    the first go on by seq.

    With ``follow`` (forward only) it does not stop at the end: it long-polls
    for new events and yields them as they are stored. With ``model``, each
    event's `Event.decode` builds that class by default.
    """
    if follow and direction is not Direction.FORWARD:
        raise ValueError("follow=True reads forward only")
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
    if from_time is not None:
        if direction is not Direction.FORWARD:
            raise ValueError("from_time reads forward only")
        if from_seq is not None:
            raise ValueError("give from_seq or from_time, not both")
    after, before = _bounds(from_seq, direction)
    since = from_time
    descending = direction is Direction.BACKWARD
    while True:
        page = await api.read(
            stream,
            limit=batch_size,
            descending=descending,
            key_pattern=key_pattern,
            after_seq=after,
            before_seq=before,
            wait_for=wait_for if follow else None,
            from_time=since,
        )
        for event in page:
            event.model = model
            yield event
        if page:
            since = None
            last = page[-1].seq
            after, before = (None, last) if descending else (last, None)
        if len(page) < batch_size and not follow:
            return
