"""The ``Store`` protocol every storage engine implements, and its records.

Validation lives in the app; the store owns semantics (sequencing, dedupe,
compaction, delivery state). Streams and consumers are addressed by a *ref*:
their name or their id (a uuid string); a ref that matches an id wins.

Records on the hot paths (messages, deliveries, publish acks) are TypedDicts
already shaped like the wire objects, so the app serializes them without
copying. Optional message fields (``id``, ``headers``, ``encoding``) are
absent, never null. Timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from hashlib import sha256
from typing import Literal, NamedTuple, Protocol, TypedDict

from streamkit.protocol.wire import StartPosition

DEFAULT_DEDUPE_WINDOW_MS = 120_000
"""How long a message ``id`` is remembered for idempotent publishing."""

DEFAULT_INACTIVE_THRESHOLD_MS = 30_000
"""How long an ephemeral consumer may sit idle before the server deletes it."""


# -- exceptions ---------------------------------------------------------------


class StoreError(Exception):
    """Base class for errors a store raises on purpose."""


class StoreNotFound(StoreError):
    """The referenced stream or consumer does not exist."""

    def __init__(self, kind: Literal["stream", "consumer"]) -> None:
        super().__init__(f"no {kind} found matching the provided ID or name")
        self.kind = kind


class StoreUnavailable(StoreError):
    """The store cannot serve requests right now (closing, or not open yet)."""


class StoreFull(StoreUnavailable):
    """The disk is full or failing: writes are refused, and nothing of them is stored,
    until it recovers; reads keep working."""


class StoreInvalid(StoreError):
    """The engine cannot store what the app accepted; ``errors`` name the fields."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k} {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class StoreUnsupported(StoreError):
    """The engine cannot do what was asked at all (501); the message says why."""


class StoreConflict(StoreError):
    """A name is already taken by another stream or consumer of the same scope."""

    def __init__(self, field_name: str = "name") -> None:
        super().__init__(f"{field_name} has already been taken")
        self.field = field_name


# -- inputs -------------------------------------------------------------------


class _NewMessageRequired(TypedDict):
    key: str
    data: str | memoryview
    """Text; or, from a split body, large ASCII text as the bytes it came in
    (`streamkit.protocol.split.join`), whose bytes are its characters: `data_text`."""


def data_text(data: str | memoryview) -> str:
    """A new message's ``data`` as text."""
    return data if isinstance(data, str) else str(data, "ascii")


def data_utf8(data: str | memoryview) -> bytes | memoryview:
    """A new message's ``data`` in UTF-8 (the bytes it came in, when it came as bytes)."""
    return data.encode() if isinstance(data, str) else data


class NewMessage(_NewMessageRequired, total=False):
    """A message to publish, as validated by the app (extra keys are ignored)."""

    id: str | None
    headers: dict[str, str] | None
    encoding: str | None


@dataclass(frozen=True)
class StreamOptions:
    """Options a stream is created with; the retention limits (see `RETENTION_FIELDS`)
    can be changed later with `Store.update_stream`.

    Retention trims the oldest messages first: past ``retain_up_to`` messages,
    past the byte limit (the smaller of ``max_bytes`` and ``max_storage_gb``
    GiB, counted as key + data bytes) but never below ``retain_at_least``
    messages, and once older than ``max_age_ms``.
    """

    one_message_per_key: bool = False
    process_unmodified: bool = False
    max_storage_gb: int | None = None
    retain_up_to: int | None = None
    retain_at_least: int | None = None
    max_bytes: int | None = None
    max_age_ms: int | None = None

    @property
    def byte_limit(self) -> int | None:
        """The byte limit in force: the smaller of ``max_bytes`` and ``max_storage_gb``."""
        limits = [n for n in (self.max_bytes, _gib(self.max_storage_gb)) if n is not None]
        return min(limits) if limits else None

    def changed(self, changes: StreamChanges) -> StreamOptions:
        """These options with the retention fields in ``changes`` replaced."""
        return replace(
            self,
            retain_up_to=changes.get("retain_up_to", self.retain_up_to),
            max_storage_gb=changes.get("max_storage_gb", self.max_storage_gb),
            retain_at_least=changes.get("retain_at_least", self.retain_at_least),
            max_bytes=changes.get("max_bytes", self.max_bytes),
            max_age_ms=changes.get("max_age_ms", self.max_age_ms),
        )


RETENTION_FIELDS = ("retain_up_to", "max_storage_gb", "retain_at_least", "max_bytes", "max_age_ms")
"""The `StreamOptions` fields ``PATCH /api/streams/{s}`` may change (``None`` lifts a limit)."""

StreamChanges = Mapping[str, int | None]
"""New values of some `RETENTION_FIELDS`, as validated by the app."""

GIB = 1024**3
"""Bytes per ``max_storage_gb`` unit."""


def _gib(gb: int | None) -> int | None:
    return None if gb is None else gb * GIB


@dataclass(frozen=True)
class ConsumerSpec:
    """Everything needed to create a consumer (already validated)."""

    name: str
    filter_key_pattern: str
    ack_wait_ms: int = 30_000
    max_ack_pending: int = 10_000
    max_deliver: int | None = None
    start: StartPosition = "all"
    ephemeral: bool = False
    inactive_threshold_ms: int | None = None


@dataclass(frozen=True)
class MessageQuery:
    """A catch-up read over one stream (``GET .../messages``)."""

    limit: int = 100
    descending: bool = False
    key_pattern: str | None = None
    after_seq: int | None = None
    before_seq: int | None = None
    wait_ms: int = 0
    from_time: datetime | None = None
    """Only messages from the first one stored at or after this time (``from_time``)."""


# -- records ------------------------------------------------------------------


@dataclass(frozen=True)
class StreamStats:
    """Counters shown on a stream. ``storage_size`` is approximate payload bytes."""

    message_count: int
    consumer_count: int
    storage_size: int


@dataclass(frozen=True)
class StreamRecord:
    """A stream as stored."""

    id: str
    name: str
    account_id: str
    options: StreamOptions
    inserted_at: datetime
    updated_at: datetime
    stats: StreamStats


@dataclass(frozen=True)
class ConsumerStats:
    """Where a consumer's messages are: waiting, delivered-unacked, dead-lettered;
    ``skipped`` counts the ones retention trimmed before the consumer acked them."""

    pending: int
    in_flight: int
    dead: int
    skipped: int = 0


@dataclass(frozen=True)
class ConsumerRecord:
    """A consumer as stored; ``stats`` only when asked for."""

    id: str
    name: str
    stream_id: str
    account_id: str
    filter_key_pattern: str
    ack_wait_ms: int
    max_ack_pending: int
    max_deliver: int | None
    ephemeral: bool
    inactive_threshold_ms: int | None
    inserted_at: datetime
    updated_at: datetime
    stats: ConsumerStats | None = field(default=None)


class _MessageRequired(TypedDict):
    key: str
    stream_id: str
    data: str
    seq: int
    inserted_at: datetime
    updated_at: datetime


class Message(_MessageRequired, total=False):
    """A stored message, wire-shaped. Optional fields are absent when unset.

    ``data_hash`` is derived from ``data``, and an engine may leave it out: the
    server adds it (`responses.with_data_hash`) to the messages it sends in the
    Sequin shape, so the hashing is paid by the reads that ask for it, not by
    every publish.
    """

    data_hash: str
    id: str
    headers: dict[str, str]
    encoding: str


class DeadLetter(Message, total=False):
    """A dead-lettered message: its fields, plus how often it was delivered
    (``delivery_count``, always set) and ``last_error`` when the engine knows one."""

    delivery_count: int
    last_error: str


class Delivery(TypedDict):
    """One message handed to a consumer; ``ack_id`` is opaque and per delivery."""

    ack_id: str
    message: Message
    delivery_count: int


class PublishAck(TypedDict):
    """Where one published message landed. A deduplicated message gets its original seq."""

    id: str | None
    seq: int
    committed: datetime


class AckRun(NamedTuple):
    """Messages next to each other in a publish request, acked with consecutive seqs
    committed at one time (a batch stored whole is one run)."""

    first_seq: int
    length: int
    committed: datetime


@dataclass(frozen=True)
class PublishResult:
    """Outcome of one all-or-nothing publish: what was stored, and each message's ack."""

    published: int
    """Messages newly stored (a message whose id was seen is acked, not stored again)."""
    runs: list[AckRun]
    """The acks of the request's messages in request order, as runs."""

    @classmethod
    def of_acks(cls, published: int, acks: Sequence[PublishAck]) -> PublishResult:
        """The result of a publish whose per-message acks are known (in request order)."""
        runs: list[AckRun] = []
        for ack in acks:
            last = runs[-1] if runs else None
            if last and last.committed == ack["committed"] and sum(last[:2]) == ack["seq"]:
                runs[-1] = AckRun(last.first_seq, last.length + 1, last.committed)
            else:
                runs.append(AckRun(ack["seq"], 1, ack["committed"]))
        return cls(published, runs)

    def acks(self, messages: Sequence[NewMessage]) -> list[PublishAck]:
        """The per-message acks, given the request's ``messages`` (for their ids)."""
        ids = [m.get("id") for m in messages]
        acks: list[PublishAck] = []
        for first, length, committed in self.runs:
            at = len(acks)
            acks += [
                {"id": ids[at + i], "seq": first + i, "committed": committed} for i in range(length)
            ]
        return acks


def data_hash(data: str) -> str:
    """The ``data_hash`` of a message: base64 SHA-256 of its UTF-8 data (as Sequin does)."""
    return bytes_hash(data.encode())


_SHA256 = sha256()
"""Never updated: a copy of it skips looking the digest up again (about 0.08 µs of the
0.55 that hashing 100 B costs)."""


def bytes_hash(raw: bytes) -> str:
    """`data_hash` of data already encoded to UTF-8 (``raw``)."""
    hasher = _SHA256.copy()
    hasher.update(raw)
    return b2a_base64(hasher.digest(), newline=False).decode()


# -- the protocol -------------------------------------------------------------


class Store(Protocol):
    """A storage engine. Every method is a coroutine and never blocks the event loop.

    Methods taking a ``stream``/``consumer`` ref raise `StoreNotFound`
    when it does not resolve. Waits (``wait_ms``) are served by the store,
    which returns as soon as something is available or the wait ends.
    """

    async def open(self) -> None:
        """Acquire resources and start background work."""
        ...

    async def close(self) -> None:
        """Stop background work and release resources. Idempotent."""
        ...

    def stop_waiting(self) -> None:
        """End every current and future wait early: the server is shutting down."""
        ...

    def fault(self) -> str | None:
        """Why the store is degraded right now (its disk is full, say), or None."""
        ...

    async def create_stream(self, name: str, options: StreamOptions) -> StreamRecord:
        """Create a stream; `StoreConflict` if the name is taken."""
        ...

    async def list_streams(self) -> list[StreamRecord]:
        """All streams, oldest first."""
        ...

    async def update_stream(self, stream: str, changes: StreamChanges) -> StreamRecord:
        """Change a stream's retention limits (keys of `RETENTION_FIELDS`); enforced from now on."""
        ...

    async def get_stream(self, stream: str) -> StreamRecord:
        """One stream with fresh stats."""
        ...

    async def delete_stream(self, stream: str) -> str:
        """Delete a stream with its messages and consumers; returns its id."""
        ...

    async def publish(self, stream: str, messages: Sequence[NewMessage]) -> PublishResult:
        """Store messages atomically (all or nothing), deduplicating by ``id``."""
        ...

    async def read_messages(self, stream: str, query: MessageQuery) -> list[Message]:
        """Read stored messages; with ``query.wait_ms`` wait for at least one match."""
        ...

    async def create_consumer(self, stream: str, spec: ConsumerSpec) -> ConsumerRecord:
        """Create a consumer; `StoreConflict` if the name is taken on this stream."""
        ...

    async def list_consumers(self, stream: str) -> list[ConsumerRecord]:
        """The stream's consumers, oldest first (without stats)."""
        ...

    async def get_consumer(self, stream: str, consumer: str) -> ConsumerRecord:
        """One consumer, with stats."""
        ...

    async def delete_consumer(self, stream: str, consumer: str) -> str:
        """Delete a consumer and its delivery state; returns its id."""
        ...

    async def receive(
        self, stream: str, consumer: str, batch_size: int, wait_ms: int = 0
    ) -> list[Delivery]:
        """Deliver up to ``batch_size`` messages, waiting up to ``wait_ms`` for the first.

        Redeliveries (nacked or past their ack deadline) come first, then new
        messages, never more than ``max_ack_pending`` unacked in total.
        Concurrent receivers on one consumer never get the same delivery.
        """
        ...

    async def ack(self, stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        """Acknowledge deliveries; unknown, stale or malformed ids are ignored."""
        ...

    async def nack(
        self,
        stream: str,
        consumer: str,
        ack_ids: Sequence[str],
        delay_ms: int = 0,
        reason: str | None = None,
    ) -> None:
        """Give deliveries back for redelivery after ``delay_ms``; an engine that can
        keeps ``reason`` as the message's ``last_error`` for `dead_letters`."""
        ...

    async def release(self, stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        """Give back deliveries that never reached a client (an abandoned long-poll).

        Like ``nack`` with no delay, but where the engine can, the attempt is not
        counted towards ``max_deliver``.
        """
        ...

    async def extend(self, stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        """Reset the ack deadline of in-flight deliveries to a full ``ack_wait_ms``."""
        ...

    async def dead_letters(
        self, stream: str, consumer: str, limit: int, after_seq: int = 0
    ) -> list[DeadLetter]:
        """Messages the consumer dead-lettered after ``max_deliver`` deliveries, by seq,
        from the first past ``after_seq``."""
        ...

    async def redrive(self, stream: str, consumer: str, seqs: Sequence[int] | None) -> int:
        """Put dead letters back to be delivered (``seqs``, or every one when None), each
        with a fresh ``max_deliver`` count; returns how many. Other seqs are ignored."""
        ...

    async def discard_dead(self, stream: str, consumer: str, seqs: Sequence[int] | None) -> int:
        """Forget dead letters (``seqs``, or every one when None) as if they were acked;
        returns how many. The messages stay in the stream for other consumers."""
        ...

    async def reset_consumer(self, stream: str, consumer: str, start: StartPosition) -> None:
        """Seek: forget the consumer's delivery state (in flight, waiting, dead) and
        deliver from ``start`` on, as a consumer created with that ``start`` would.
        Ack ids handed out before are stale from now on."""
        ...
