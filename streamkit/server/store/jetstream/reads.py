"""Catch-up reads from JetStream: batched direct gets, forward and backward.

A read ``from_time`` first finds its seq with a direct get by ``start_time``.
Forward reads are one batched direct get (``next_by_subj`` = the key filter)
from ``after_seq + 1``. JetStream only reads forward, so a backward read scans
windows ending at ``before_seq`` (or the last seq), each window read forward
and its newest matches kept, widening the window while the filter is sparse.

A read that finds nothing and may wait subscribes to the stream's subjects:
every publish, through any gateway, is seen there, and wakes the read to look
again. The subscription only says *when* to look; what is returned always
comes from the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg

from streamkit.protocol.wire import format_time
from streamkit.server.store.base import Message, MessageQuery
from streamkit.server.store.jetstream.codec import (
    datetime_to_ns,
    decode_message,
    parse_rfc3339_ns,
)
from streamkit.server.store.jetstream.conn import JsConn
from streamkit.server.store.jetstream.meta import StreamHandle

_PAGE = 1000
"""Most messages asked for in one direct get."""
_FIRST_WINDOW = 64
_MAX_WINDOW = 1 << 20
_SETTLE = (0.005, 0.01, 0.02, 0.05, 0.1)
"""Re-reads after a wake-up: a message is seen on its subject a moment before
the stream has stored it (and an atomic batch only on commit)."""
_IDLE_POLL = 1.0
"""Re-read this often while waiting even without a wake-up (a missed one, a reconnect)."""


def to_message(msg: Msg, handle: StreamHandle) -> Message:
    """A direct-get reply as a `Message`."""
    headers = msg.headers or {}
    return decode_message(
        headers["Nats-Subject"],
        msg.data,
        headers,
        int(headers["Nats-Sequence"]),
        parse_rfc3339_ns(headers["Nats-Time-Stamp"]),
        handle.root,
        handle.id,
    )


class Reader:
    """Serves ``read_messages`` for every stream over one connection."""

    def __init__(self, conn: JsConn) -> None:
        self._conn = conn

    async def read(
        self, handle: StreamHandle, query: MessageQuery, stop: asyncio.Event
    ) -> list[Message]:
        """A page of messages; with ``query.wait_ms`` wait for at least one match."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + query.wait_ms / 1000
        found = await self._read_once(handle, query)
        if found or query.wait_ms <= 0 or stop.is_set():
            return found
        woke = asyncio.Event()

        async def on_publish(_: Msg) -> None:
            woke.set()

        subject = handle.root + (query.key_pattern or ">")
        sub = await self._conn.subscribe(subject, on_publish)
        try:
            settle: Iterator[float] = iter(())
            while True:
                # Clear before reading, so a publish landing during the read still wakes us.
                woke.clear()
                found = await self._read_once(handle, query)
                remaining = deadline - loop.time()
                if found or remaining <= 0 or stop.is_set():
                    return found
                pause = next(settle, None)
                if pause is not None:
                    await asyncio.sleep(min(pause, remaining))
                    continue
                await _first(woke, stop, min(remaining, _IDLE_POLL))
                if woke.is_set():
                    settle = iter(_SETTLE)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _read_once(self, handle: StreamHandle, query: MessageQuery) -> list[Message]:
        subject = handle.root + (query.key_pattern or ">")
        if query.from_time is not None:
            first = await self.first_seq_at(handle, query.from_time)
            if first is None:
                return []
            after = max(query.after_seq or 0, first - 1)
            query = dataclasses.replace(query, from_time=None, after_seq=after)
        if query.descending:
            return await self._backward(handle, subject, query)
        start = (query.after_seq or 0) + 1
        want = query.limit
        if query.before_seq is not None:
            want = min(want, query.before_seq - start)
        out: list[Message] = []
        while want > 0:
            page = await self._page(handle, subject, start, min(want, _PAGE))
            if query.before_seq is not None:
                page = [m for m in page if m["seq"] < query.before_seq]
            out.extend(page)
            if len(page) < min(want, _PAGE):
                break
            want -= len(page)
            start = page[-1]["seq"] + 1
        return out

    async def first_seq_at(self, handle: StreamHandle, when: datetime) -> int | None:
        """The seq of the first message stored at or after ``when`` (None: none is).

        One direct get by ``start_time`` (nats-server 2.11 and later). A server that
        does not know the field answers with the stream's first message instead: its
        time gives it away, and a binary search over seqs finds the answer.
        """
        at_ns = datetime_to_ns(when)
        found = await self._conn.direct_get(
            handle.js_name, {"start_time": format_time(when), "next_by_subj": handle.root + ">"}
        )
        if not found:
            return None
        seq, stamp = _seq_and_time(found[0])
        if stamp >= at_ns:
            return seq
        return await self._search_time(handle, at_ns)

    async def _search_time(self, handle: StreamHandle, at_ns: int) -> int | None:
        """Binary search for the first seq stored at or after ``at_ns`` (times grow with
        seqs): about log2(messages) direct gets."""
        info = await self._conn.api(f"STREAM.INFO.{handle.js_name}")
        state: dict[str, Any] = info.get("state") or {}
        lo, hi = max(int(state.get("first_seq", 1)), 1), int(state.get("last_seq", 0))
        answer: int | None = None
        subject = handle.root + ">"
        while lo <= hi:
            mid = (lo + hi) // 2
            page = await self._conn.direct_get(
                handle.js_name, {"seq": mid, "next_by_subj": subject}
            )
            if not page:  # nothing stored from mid on
                hi = mid - 1
                continue
            seq, stamp = _seq_and_time(page[0])
            if stamp >= at_ns:
                answer, hi = seq, mid - 1
            else:
                lo = seq + 1
        return answer

    async def _backward(
        self, handle: StreamHandle, subject: str, query: MessageQuery
    ) -> list[Message]:
        info = await self._conn.api(f"STREAM.INFO.{handle.js_name}")
        state: dict[str, Any] = info.get("state") or {}
        last, first = int(state.get("last_seq", 0)), int(state.get("first_seq", 0))
        hi = last if query.before_seq is None else min(last, query.before_seq - 1)
        floor = max(first, 1, (query.after_seq or 0) + 1)
        out: list[Message] = []
        window = max(query.limit, _FIRST_WINDOW)
        while hi >= floor and len(out) < query.limit:
            lo = max(floor, hi - window + 1)
            found = await self._range(handle, subject, lo, hi)
            need = query.limit - len(out)
            out.extend(reversed(found[-need:]))
            hi = lo - 1
            window = min(window * 4, _MAX_WINDOW)
        return out

    async def _range(self, handle: StreamHandle, subject: str, lo: int, hi: int) -> list[Message]:
        """Every match with ``lo <= seq <= hi``, ascending."""
        out: list[Message] = []
        start = lo
        while start <= hi:
            want = min(hi - start + 1, _PAGE)
            page = await self._page(handle, subject, start, want)
            out.extend(m for m in page if m["seq"] <= hi)
            if len(page) < want or page[-1]["seq"] >= hi:
                break
            start = page[-1]["seq"] + 1
        return out

    async def _page(
        self, handle: StreamHandle, subject: str, start: int, batch: int
    ) -> list[Message]:
        msgs = await self._conn.direct_get(
            handle.js_name, {"seq": start, "next_by_subj": subject, "batch": batch}
        )
        return [to_message(m, handle) for m in msgs]


def _seq_and_time(msg: Msg) -> tuple[int, int]:
    headers = msg.headers or {}
    return int(headers["Nats-Sequence"]), parse_rfc3339_ns(headers["Nats-Time-Stamp"])


async def _first(a: asyncio.Event, b: asyncio.Event, timeout: float) -> None:
    """Return when either event is set or ``timeout`` passes."""
    waits = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
