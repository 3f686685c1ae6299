"""A scriptable stand-in for the send route, served through aioresponses.

`FakeSendRoute` stores and acks like a streamkit server (ids are deduped, a
duplicate is acked with its original seq) unless a scripted behaviour says
otherwise for the next request. It records every request, so tests can check
what was resent and in which order things were stored.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aioresponses import CallbackResult

from streamkit.errors import Nack
from streamkit.models import Ack, Event

BASE = "http://streamkit.test"
SEND_URL = re.compile(r"^http://streamkit\.test/api/streams/[^/]+/messages(\?.*)?$")
HOLD_LIMIT = 10.0
"""Seconds a held response waits for `release` before the fake gives up (bounds every test)."""

Message = dict[str, Any]
Behaviour = Callable[[list[Message]], "CallbackResult | None"]
"""Given a request's messages, return a response, raise, or return None to store and ack."""


def json_response(
    status: int, body: object, headers: dict[str, str] | None = None
) -> CallbackResult:
    """A response with a JSON body."""
    return CallbackResult(status=status, body=orjson.dumps(body), headers=headers)


def raw_response(body: bytes, status: int = 200) -> CallbackResult:
    """A response with any body."""
    return CallbackResult(status=status, body=body)


def error_response(
    status: int, summary: str = "nope", headers: dict[str, str] | None = None, **extra: Any
) -> CallbackResult:
    """An error response shaped like the server's."""
    return json_response(status, {"summary": summary, **extra}, headers)


@dataclass
class FakeSendRoute:
    """Acks ``POST /api/streams/{s}/messages`` like a streamkit server, or as scripted."""

    stored: list[Message] = field(default_factory=list)
    """Messages stored, in seq order (seq = index + 1)."""
    requests: list[list[Message]] = field(default_factory=list)
    """The messages of every request received, in arrival order."""
    delay: float = 0.0
    """Seconds each response takes."""
    jitter: float = 0.0
    """Up to this many seconds more, at random, per response."""
    script: deque[Behaviour] = field(default_factory=deque)
    _seq_by_id: dict[str, int] = field(default_factory=dict)
    _open: asyncio.Event | None = None
    on_request: Callable[[list[Message]], None] | None = None
    ack_runs: bool = True
    """Answer ``?acks=runs`` with runs, as the server does (False: as an older one)."""

    # Scripting.

    def then(self, behaviour: Behaviour, times: int = 1) -> None:
        """Handle the next ``times`` requests with ``behaviour``."""
        self.script.extend([behaviour] * times)

    def fail(self, status: int, times: int = 1, **response: Any) -> None:
        """Answer the next ``times`` requests with an error status (nothing stored)."""
        self.then(lambda _: error_response(status, **response), times)

    def raise_(self, exc: BaseException, times: int = 1) -> None:
        """Make the next ``times`` requests fail below HTTP (nothing stored)."""

        def behaviour(_: list[Message]) -> CallbackResult:
            raise exc

        self.then(behaviour, times)

    def store_then_drop(self, times: int = 1) -> None:
        """Store the next requests' messages but lose the response (a timeout)."""

        self.then(self.store_and_drop, times)

    def store_and_drop(self, messages: list[Message]) -> CallbackResult:
        """A behaviour: store ``messages``, then fail as if the answer timed out."""
        self._store(messages)
        raise asyncio.TimeoutError

    def hold(self) -> None:
        """Make responses wait until `release`."""
        self._open = asyncio.Event()

    def release(self) -> None:
        """Let held responses (and later ones) through."""
        if self._open is not None:
            self._open.set()

    # Reading what happened.

    def stored_ids(self) -> list[str]:
        """Ids of the stored messages, in seq order."""
        return [m["id"] for m in self.stored]

    def request_sizes(self) -> list[int]:
        """How many messages each request carried."""
        return [len(r) for r in self.requests]

    # Serving.

    async def handle(self, url: object, **kwargs: Any) -> CallbackResult:
        """The aioresponses callback."""
        messages: list[Message] = orjson.loads(kwargs["data"])["messages"]
        self.requests.append(messages)
        if self.on_request is not None:
            self.on_request(messages)
        if self._open is not None:
            await asyncio.wait_for(self._open.wait(), HOLD_LIMIT)
        if self.delay or self.jitter:
            await asyncio.sleep(self.delay + random.uniform(0, self.jitter))
        if self.script:
            result = self.script.popleft()(messages)
            if result is not None:
                return result
        data = self._store(messages)
        if self.ack_runs and "acks=runs" in str(url):  # as the server answers ?acks=runs
            data["ack_runs"] = _runs(data.pop("acks"))
        return json_response(200, {"data": data})

    def _store(self, messages: list[Message]) -> dict[str, Any]:
        acks, published = [], 0
        for message in messages:
            seq = self._seq_by_id.get(message["id"])
            if seq is None:
                self.stored.append(message)
                seq = self._seq_by_id[message["id"]] = len(self.stored)
                published += 1
            acks.append({"id": message["id"], "seq": seq, "committed": "2024-07-01T12:00:00Z"})
        return {"published": published, "acks": acks}


def _runs(acks: list[dict[str, Any]]) -> list[list[Any]]:
    """Per-message acks as ``[first seq, count, committed]`` runs."""
    runs: list[list[Any]] = []
    for ack in acks:
        last = runs[-1] if runs else None
        if last is not None and last[0] + last[1] == ack["seq"] and last[2] == ack["committed"]:
            last[1] += 1
        else:
            runs.append([ack["seq"], 1, ack["committed"]])
    return runs


@dataclass
class Outcomes:
    """Collects what the callbacks were called with."""

    acks: list[Ack] = field(default_factory=list)
    nacks: list[Nack] = field(default_factory=list)

    def on_ack(self, ack: Ack) -> None:
        """An ``on_ack`` callback."""
        self.acks.append(ack)

    def on_nack(self, nack: Nack) -> None:
        """An ``on_nack`` callback."""
        self.nacks.append(nack)

    def nacked(self) -> dict[str, Nack]:
        """Nacks by event id."""
        return {n.id: n for n in self.nacks}

    def assert_each_settled_once(self, events: list[Event]) -> None:
        """Every event got exactly one callback, and its future agrees."""
        seen = [a.id for a in self.acks] + [n.id for n in self.nacks]
        assert sorted(seen) == sorted(e.id for e in events)
        acked = {a.id for a in self.acks}
        for event in events:
            assert event.acked == (event.id in acked)
            assert event.nacked == (event.id not in acked)


def make_events(count: int, keys: int = 0, size: int = 20) -> list[Event]:
    """``count`` text events; with ``keys``, keyed ``k.<i % keys>``."""
    return [Event(f"{i:0{size}d}", key=f"k.{i % keys}" if keys else None) for i in range(count)]


def encoded_size(event: Event, stream: str = "s") -> int:
    """The bytes ``event`` takes in a publish request to ``stream`` (what the bounds count)."""
    return len(orjson.dumps(event.to_wire(stream)))
