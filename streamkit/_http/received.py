"""`Received`: the deliveries of one receive, made into events one at a time.

A subscription holds thousands of received deliveries at once, prefetched and
not yet handed out. Built as events on arrival, each would be two objects (the
event and its `Delivery`) that live across several runs of the garbage
collector's youngest generation, get promoted, and make the full collections
both more frequent and longer (the consuming process spent 7-12 us of CPU per
event that way, and 3.6-4.4 us without). So a receive asks for its deliveries
as columns (``?deliveries=columns``, a list per field), which decode into a
handful of lists, and `Received.event` builds each event only when it is
handed out; acked at once, it dies young.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from streamkit.errors import DecodeError
from streamkit.models import Delivery, Event

_REQUIRED = ("ack_id", "delivery_count", "seq", "key", "data", "inserted_at")
_OPTIONAL = ("id", "headers", "encoding")
_TYPED = (("ack_id", str), ("delivery_count", int), ("seq", int), ("key", str), ("data", str))
"""Columns checked entry by entry on arrival: the rest is checked as each event is built."""


class Received:
    """The deliveries of one receive from ``stream``, in order.

    ``ack_ids`` are known at once (a subscription leases them on arrival);
    ``event(i)`` builds the i-th delivery's event, with a fresh `Delivery`, and
    is called once per delivery.
    """

    __slots__ = ("_make", "ack_ids", "stream")

    def __init__(self, stream: str, ack_ids: list[str], make: Callable[[int], Event]) -> None:
        self.stream = stream
        self.ack_ids = ack_ids
        self._make = make

    def __len__(self) -> int:
        return len(self.ack_ids)

    def __repr__(self) -> str:
        return f"<Received stream={self.stream!r} deliveries={len(self.ack_ids)}>"

    def event(self, index: int) -> Event:
        """The ``index``-th delivery as an event (a new one on each call)."""
        return self._make(index)

    def events(self) -> list[Event]:
        """Every delivery as an event."""
        return [self._make(i) for i in range(len(self.ack_ids))]

    @classmethod
    def from_events(cls, stream: str, events: Sequence[Event]) -> Received:
        """Deliveries already made into events (each with a `Delivery`), handed out as they are."""
        ack_ids = []
        for event in events:
            if event.ack_id is None:
                raise DecodeError(f"{event!r} has no delivery")
            ack_ids.append(event.ack_id)
        return cls(stream, ack_ids, events.__getitem__)

    @classmethod
    def from_columns(cls, stream: str, columns: Mapping[str, Any]) -> Received:
        """The ``?deliveries=columns`` form of a receive's answer, checked whole: a batch
        with a malformed column raises `DecodeError` and hands out nothing."""
        count = _checked_count(columns)
        ack_ids: list[str] = columns["ack_id"]
        counts: list[int] = columns["delivery_count"]
        seqs: list[int] = columns["seq"]
        keys: list[str] = columns["key"]
        texts: list[str] = columns["data"]
        stamps: list[Any] = columns["inserted_at"]
        none = [None] * count
        ids: list[Any] = columns.get("id") or none
        headers: list[Any] = columns.get("headers") or none
        encodings: list[Any] = columns.get("encoding") or none
        stream_id = columns.get("stream_id")
        from_fields = Event.from_fields

        def make(i: int) -> Event:
            return from_fields(
                texts[i],
                keys[i],
                seqs[i],
                id=ids[i],
                headers=headers[i],
                encoding=encodings[i],
                inserted_at=stamps[i],
                stream=stream,
                stream_id=stream_id,
                delivery=Delivery(ack_ids[i], counts[i]),
            )

        return cls(stream, ack_ids, make)


def _checked_count(columns: Mapping[str, Any]) -> int:
    """How many deliveries the columns hold; `DecodeError` unless each is a list of that
    many entries and the fields every event needs at once have the right types."""
    try:
        count = len(columns["ack_id"])
        for name in _REQUIRED:
            _check_length(columns, name, count)
        for name in _OPTIONAL:
            if columns.get(name) is not None:
                _check_length(columns, name, count)
    except (KeyError, TypeError) as exc:
        raise DecodeError(f"malformed deliveries: missing or not a list: {exc}") from exc
    for name, kind in _TYPED:
        if not all(type(value) is kind for value in columns[name]):
            raise DecodeError(f"malformed deliveries: {name} must be a list of {kind.__name__}")
    return count


def _check_length(columns: Mapping[str, Any], name: str, count: int) -> None:
    column = columns[name]
    if type(column) is not list:
        raise DecodeError(f"malformed deliveries: {name} is not a list")
    if len(column) != count:
        raise DecodeError(
            f"malformed deliveries: {name} has {len(column)} entries, ack_id has {count}"
        )
