"""Dead letters in JetStream: capturing max-deliveries advisories, counting and reading them.

After ``max_deliver`` deliveries JetStream stops delivering a message and
announces it on ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>``.
Advisories are core NATS messages, gone if nobody stores them, so each
streamkit stream with such a consumer gets a companion stream
``<prefix>_<name>~dead`` over its advisory subjects, created before the first
consumer that sets ``max_deliver``. The dead messages themselves stay in their
stream; the advisories say which seqs they are.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, cast

import orjson
from nats.aio.msg import Msg

from streamkit.server.store.base import DeadLetter
from streamkit.server.store.jetstream.codec import Naming, advisory_subject
from streamkit.server.store.jetstream.conn import (
    ERR_STREAM_NAME_IN_USE,
    ERR_STREAM_NOT_FOUND,
    JsApiError,
    JsConn,
    NoResponders,
)
from streamkit.server.store.jetstream.meta import (
    META_ID,
    Catalog,
    StreamHandle,
    dead_stream_config,
)
from streamkit.server.store.jetstream.reads import to_message

SWEEP_PULL_MS = 10
"""Expiry of the one-byte pull that makes JetStream apply ``max_deliver``."""
_PAGE = 1000


class DeadLetters:
    """Dead-letter streams of every streamkit stream, over one connection."""

    def __init__(self, conn: JsConn, naming: Naming, catalog: Catalog, *, replicas: int) -> None:
        self._conn = conn
        self._naming = naming
        self._catalog = catalog
        self._replicas = replicas
        self._ready: set[str] = set()

    async def ensure_stream(self, handle: StreamHandle) -> None:
        """Create the stream that captures ``handle``'s dead letters (idempotent)."""
        if handle.id in self._ready:
            return
        config = dead_stream_config(self._naming, handle, replicas=self._replicas)
        endpoint = f"STREAM.CREATE.{config['name']}"
        try:
            await self._conn.api(endpoint, config)
        except JsApiError as exc:
            if exc.err_code != ERR_STREAM_NAME_IN_USE:
                raise
            info = await self._conn.api(f"STREAM.INFO.{config['name']}")
            meta = (info.get("config") or {}).get("metadata") or {}
            if meta.get(META_ID) != handle.id:
                # Left over from a deleted stream of the same name.
                await self.delete_stream(handle)
                await self._conn.api(endpoint, config)
        self._ready.add(handle.id)

    async def delete_stream(self, handle: StreamHandle) -> None:
        """Delete ``handle``'s dead-letter stream, if there is one."""
        self._ready.discard(handle.id)
        with contextlib.suppress(JsApiError):
            await self._conn.api(f"STREAM.DELETE.{self._naming.dead_stream(handle.name)}")

    async def purge(self, handle: StreamHandle, consumer: str) -> None:
        """Forget a consumer's dead letters (it was deleted, or its name is reused)."""
        with contextlib.suppress(JsApiError):
            await self._conn.api(
                f"STREAM.PURGE.{self._naming.dead_stream(handle.name)}",
                {"filter": advisory_subject(handle.js_name, consumer)},
            )

    async def count(self, handle: StreamHandle, consumer: str) -> int:
        """How many messages the consumer dead-lettered."""
        subject = advisory_subject(handle.js_name, consumer)
        try:
            info = await self._conn.api(
                f"STREAM.INFO.{self._naming.dead_stream(handle.name)}",
                {"subjects_filter": subject},
            )
        except JsApiError as exc:
            if exc.err_code == ERR_STREAM_NOT_FOUND:
                return 0
            raise
        subjects = (info.get("state") or {}).get("subjects") or {}
        return int(subjects.get(subject, 0))

    async def sweep(
        self, handle: StreamHandle, consumer: str, info: dict[str, Any]
    ) -> tuple[dict[str, Any], int]:
        """Make JetStream dead-letter what is due; returns fresh (consumer info, dead count).

        JetStream notices that a message ran out of deliveries only when it
        next looks for something to deliver. A pull that accepts at most one
        byte makes it look without handing anything out (every message is
        larger, so the pull ends with 409 and the message stays where it is).
        """
        dead = await self.count(handle, consumer)
        before = int(info.get("num_ack_pending", 0))
        if before == 0:
            return info, dead
        with contextlib.suppress(NoResponders):
            await self._conn.pull(
                handle.js_name,
                consumer,
                batch=1,
                expires_ms=SWEEP_PULL_MS,
                no_wait=True,
                max_bytes=1,
            )
        info = await self._catalog.consumer_info(handle, consumer)
        dropped = before - int(info.get("num_ack_pending", 0))
        count = dead
        # The advisory reaches the dead-letter stream a moment after.
        for pause in (0.0, 0.005, 0.01, 0.02, 0.05, 0.1):
            await asyncio.sleep(pause)
            count = await self.count(handle, consumer)
            if dropped <= 0 or count >= dead + dropped:
                break
        return info, count

    async def messages(
        self, handle: StreamHandle, consumer: str, limit: int, after_seq: int = 0
    ) -> list[DeadLetter]:
        """The consumer's dead-lettered messages still in the stream past ``after_seq``, by
        seq, each with the delivery count its advisory reported."""
        counts: dict[int, int] = {}
        for advisory in await self._advisories(handle, consumer):
            seq = int(advisory["stream_seq"])
            if seq > after_seq:
                counts[seq] = int(advisory.get("deliveries") or 0)
        seqs = sorted(counts)
        conn = self._conn

        async def get(seq: int) -> list[Msg]:
            return await conn.direct_get(handle.js_name, {"seq": seq})

        out: list[DeadLetter] = []
        # Compaction may have removed some: fetch in chunks until ``limit`` are found.
        for start in range(0, len(seqs), limit):
            found = await asyncio.gather(*(get(s) for s in seqs[start : start + limit]))
            for m in found:
                if m:
                    dead = cast(DeadLetter, to_message(m[0], handle))
                    dead["delivery_count"] = counts[dead["seq"]]
                    out.append(dead)
            if len(out) >= limit:
                break
        return out[:limit]

    async def discard(self, handle: StreamHandle, consumer: str, seqs: Sequence[int] | None) -> int:
        """Delete the advisories of dead letters ``seqs`` (or all); returns how many seqs."""
        if seqs is None:
            found = {int(a["stream_seq"]) for a in await self._advisories(handle, consumer)}
            await self.purge(handle, consumer)
            return len(found)
        wanted = set(seqs)
        dead_stream = self._naming.dead_stream(handle.name)
        gone: set[int] = set()
        for advisory_seq, seq in await self._advisory_seqs(handle, consumer):
            if seq in wanted:
                await self._conn.api(
                    f"STREAM.MSG.DELETE.{dead_stream}", {"seq": advisory_seq, "no_erase": True}
                )
                gone.add(seq)
        return len(gone)

    async def _advisories(self, handle: StreamHandle, consumer: str) -> list[dict[str, Any]]:
        """Every max-deliveries advisory recorded for the consumer, in arrival order."""
        return [advisory for _, advisory in await self._recorded(handle, consumer)]

    async def _advisory_seqs(self, handle: StreamHandle, consumer: str) -> list[tuple[int, int]]:
        """(seq in the dead-letter stream, dead message's seq) of each advisory."""
        return [(at, int(a["stream_seq"])) for at, a in await self._recorded(handle, consumer)]

    async def _recorded(
        self, handle: StreamHandle, consumer: str
    ) -> list[tuple[int, dict[str, Any]]]:
        out: list[tuple[int, dict[str, Any]]] = []
        start = 1
        dead_stream = self._naming.dead_stream(handle.name)
        subject = advisory_subject(handle.js_name, consumer)
        while True:
            try:
                page = await self._conn.direct_get(
                    dead_stream, {"seq": start, "next_by_subj": subject, "batch": _PAGE}
                )
            except NoResponders:  # no dead-letter stream (yet)
                return out
            out.extend(
                (int((m.headers or {})["Nats-Sequence"]), orjson.loads(m.data)) for m in page
            )
            if len(page) < _PAGE:
                return out
            start = out[-1][0] + 1
