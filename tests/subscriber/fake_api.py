"""An in-memory stand-in for `API`, recording what the subscription workers send."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count
from types import MappingProxyType
from typing import Any

from streamkit._http.api import API
from streamkit._http.received import Received
from streamkit._http.transport import Transport
from streamkit.models import Consumer, Delivery, Event
from streamkit.subscriber._acker import Acker
from streamkit.subscriber._attachment import Attachment
from streamkit.subscriber._leaser import Leaser

_ids = count(1)


def delivery(stream: str = "orders", seq: int | None = None) -> Event:
    """A received event as `API.receive` returns it (with an ack id)."""
    n = next(_ids)
    seq = seq or n
    return Event.from_wire(
        {"key": stream, "data": f"d{n}", "seq": seq},
        stream=stream,
        delivery=Delivery(f"{seq}.t{n}", 1),
    )


def attached(
    consumers: Mapping[str, str], deadlines: Mapping[str, float] | None = None
) -> Mapping[str, Attachment]:
    """What a started subscription hands its workers: each stream's consumer and deadline."""
    deadlines = deadlines or {}
    return MappingProxyType(
        {s: Attachment(c, 30.0, deadlines.get(s, 30.0)) for s, c in consumers.items()}
    )


def make_acker(api: FakeAPI, consumers: Mapping[str, str], **options: Any) -> Acker:
    """An `Acker` over ``consumers`` with a leaser of its own."""
    attachments = attached(consumers)
    return Acker(api, attachments, Leaser(api, attachments), **options)


def consumer(name: str, ack_wait_ms: int = 30_000) -> Consumer:
    return Consumer(
        id=f"id-{name}",
        name=name,
        stream_id="s",
        filter_key_pattern=">",
        ack_wait_ms=ack_wait_ms,
        max_ack_pending=10_000,
        max_deliver=None,
    )


@dataclass
class Call:
    verb: str
    stream: str
    consumer: str
    ack_ids: list[str]
    delay: float | None = None
    reason: str | None = None


@dataclass
class FakeAPI(API):
    """Records settles; ``receive`` serves ``batches[stream]`` then long-polls (sleeps)."""

    batches: dict[str, list[list[Event]]] = field(default_factory=dict)
    ack_wait_ms: int = 30_000
    calls: list[Call] = field(default_factory=list)
    receives: list[str] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    """Raised, in order, by the next settle or receive calls."""
    created: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    deleted: list[tuple[str, str]] = field(default_factory=list)
    on_receive: Callable[[str], list[Event] | None] | None = None

    def __post_init__(self) -> None:
        super().__init__(Transport(["http://fake.invalid"]))

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    def settled(self, verb: str) -> list[str]:
        return [i for c in self.calls if c.verb == verb for i in c.ack_ids]

    async def get_consumer(self, stream: str, consumer_name: str) -> Consumer:
        self._maybe_fail()
        return consumer(consumer_name, self.ack_wait_ms)

    async def create_consumer(self, stream: str, name: str, options: Mapping[str, Any]) -> Consumer:
        self._maybe_fail()
        self.created.append((stream, name, dict(options)))
        return consumer(name, self.ack_wait_ms)

    async def delete_consumer(self, stream: str, consumer_name: str) -> None:
        self.deleted.append((stream, consumer_name))

    async def receive(
        self,
        stream: str,
        consumer: str,
        *,
        batch_size: int = 10,
        wait_for: float = 0.0,
        retry: bool = True,
    ) -> list[Event]:
        self.receives.append(stream)
        await asyncio.sleep(0)
        self._maybe_fail()
        if self.on_receive is not None:
            produced = self.on_receive(stream)
            if produced is not None:
                return produced
        queued = self.batches.get(stream)
        if queued:
            return queued.pop(0)
        await asyncio.sleep(wait_for)
        return []

    async def receive_batch(
        self,
        stream: str,
        consumer: str,
        *,
        batch_size: int = 10,
        wait_for: float = 0.0,
        retry: bool = True,
    ) -> Received:
        events = await self.receive(stream, consumer, batch_size=batch_size, wait_for=wait_for)
        return Received.from_events(stream, events)

    async def ack(self, stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        self._maybe_fail()
        self.calls.append(Call("ack", stream, consumer, list(ack_ids)))

    async def nack(
        self,
        stream: str,
        consumer: str,
        ack_ids: Sequence[str],
        delay: float | None = None,
        reason: str | None = None,
    ) -> None:
        self._maybe_fail()
        self.calls.append(Call("nack", stream, consumer, list(ack_ids), delay, reason))

    async def extend(self, stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        self._maybe_fail()
        self.calls.append(Call("extend", stream, consumer, list(ack_ids)))
