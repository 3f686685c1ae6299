"""Publishing into JetStream: all-or-nothing batches with idempotent ids.

A request becomes one JetStream *atomic batch* (``allow_atomic``, nats-server
2.12+, ADR-50): every message but the last is sent with ``Nats-Batch-Id`` and
``Nats-Batch-Sequence``, the last also with ``Nats-Batch-Commit``, and the
server stores all of them or none, at consecutive sequence numbers, answering
the commit with the last seq. A single message is a plain publish.

Ids are ``Nats-Msg-Id`` headers, so JetStream's duplicate window dedupes them
for every gateway. A plain publish of a duplicate is answered with the
original seq. An atomic batch holding a duplicate is refused as a whole
(error 10201), so the engine then asks, id by id, which are duplicates with a
publish that JetStream can only answer from its dedupe table (it carries a
``Nats-Expected-Last-Msg-Id`` that never matches: a duplicate gets the original
seq, anything else the mismatch error, and nothing is stored), drops those and
sends the rest again.

For ``one_message_per_key`` streams (``max_msgs_per_subject=1``) the current
message of each key is looked up first (one batched direct get), to keep the
key's first ``inserted_at`` and, with ``process_unmodified=false``, to skip
messages whose data did not change.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

from streamkit.server.store.base import (
    NewMessage,
    PublishAck,
    PublishResult,
    StoreInvalid,
    data_utf8,
)
from streamkit.server.store.jetstream.codec import (
    HDR_ENCODING,
    HDR_HEADERS,
    HDR_INSERTED,
    HDR_MSG_ID,
    encode_headers,
    encode_msg_id,
    ns_to_datetime,
    parse_rfc3339_ns,
)
from streamkit.server.store.jetstream.conn import (
    ERR_BATCH_DUPLICATE_ID,
    ERR_BATCH_TOO_MANY_INFLIGHT,
    ERR_WRONG_LAST_MSG_ID,
    JetStreamUnavailable,
    JsApiError,
    JsConn,
    api_error,
)
from streamkit.server.store.jetstream.meta import StreamHandle

_ATTEMPTS = 6
_HEADROOM = 512
"""Bytes kept free under max_payload for the batch headers and the subject."""


class MessageTooLarge(StoreInvalid):
    """A message does not fit NATS's ``max_payload``."""

    def __init__(self, index: int, size: int, limit: int) -> None:
        most = limit - _HEADROOM
        problem = f"is {size} bytes with headers; the NATS server accepts at most {most}"
        super().__init__({f"messages[{index}].data": [problem]})
        self.index = index


@dataclass
class _Planned:
    """One message that will be sent."""

    index: int
    msg_id: str | None
    subject: str
    payload: bytes
    headers: dict[str, str]


@dataclass
class _Current:
    """The message a key currently holds (stored, or earlier in this request)."""

    data: bytes
    seq: int = 0
    updated_ns: int = 0
    inserted_ns: int | None = None
    index: int | None = None


class BatchWriter:
    """Writes batches of messages into their JetStream streams over one connection."""

    def __init__(self, conn: JsConn, *, max_batches_per_stream: int = 32) -> None:
        self._conn = conn
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._per_stream = max_batches_per_stream

    async def publish(self, handle: StreamHandle, messages: Sequence[NewMessage]) -> PublishResult:
        """Store ``messages`` all or nothing; acks in request order.

        Raises `NoResponders` when no stream listens on
        ``handle``'s subjects (it was deleted): the caller re-resolves.
        """
        current = await self._current(handle, messages)
        acks: list[PublishAck | None] = [None] * len(messages)
        alias: dict[int, int] = {}
        planned = self._plan(handle, messages, current, acks, alias)
        seqs: dict[int, int] = {}
        dups: dict[int, int] = {}
        if planned:
            async with self._slot(handle.js_name):
                await self._send(planned, seqs, dups)
        committed = datetime.now(timezone.utc)
        dup_times = await self._stored_times(handle, set(dups.values()))
        for p in planned:
            if p.index in seqs:
                acks[p.index] = {"id": p.msg_id, "seq": seqs[p.index], "committed": committed}
            else:
                seq = dups[p.index]
                acks[p.index] = {
                    "id": p.msg_id,
                    "seq": seq,
                    "committed": dup_times.get(seq, committed),
                }
        for index in range(len(messages)):
            target = index
            while acks[target] is None:
                target = alias[target]
            if target != index:
                first = acks[target]
                assert first is not None
                acks[index] = {**first, "id": messages[index].get("id")}
        return PublishResult.of_acks(len(seqs), [a for a in acks if a is not None])

    # -- planning -------------------------------------------------------------------

    def _plan(
        self,
        handle: StreamHandle,
        messages: Sequence[NewMessage],
        current: dict[str, _Current],
        acks: list[PublishAck | None],
        alias: dict[int, int],
    ) -> list[_Planned]:
        per_key = handle.options.one_message_per_key
        skip_unmodified = per_key and not handle.options.process_unmodified
        limit = self._conn.max_payload - _HEADROOM
        first_with_id: dict[str, int] = {}
        planned: list[_Planned] = []
        for i, m in enumerate(messages):
            msg_id = m.get("id")
            if msg_id is not None and msg_id in first_with_id:
                alias[i] = first_with_id[msg_id]
                continue
            if msg_id is not None:
                first_with_id[msg_id] = i
            subject = handle.root + m["key"]
            payload = bytes(data_utf8(m["data"]))
            headers: dict[str, str] = {}
            if per_key:
                prev = current.get(subject)
                if skip_unmodified and prev is not None and prev.data == payload:
                    if prev.index is not None:
                        alias[i] = prev.index
                    else:
                        acks[i] = {
                            "id": msg_id,
                            "seq": prev.seq,
                            "committed": ns_to_datetime(prev.updated_ns),
                        }
                    continue
                inserted = prev.inserted_ns if prev is not None else None
                if inserted is not None:
                    headers[HDR_INSERTED] = str(inserted)
                current[subject] = _Current(data=payload, inserted_ns=inserted, index=i)
            if msg_id is not None:
                headers[HDR_MSG_ID] = encode_msg_id(msg_id)
            user_headers = m.get("headers")
            if user_headers:
                headers[HDR_HEADERS] = encode_headers(user_headers)
            encoding = m.get("encoding")
            if encoding is not None:
                headers[HDR_ENCODING] = encoding
            size = len(payload) + sum(len(k) + len(v) + 4 for k, v in headers.items())
            if size > limit:
                raise MessageTooLarge(i, size, self._conn.max_payload)
            planned.append(_Planned(i, msg_id, subject, payload, headers))
        return planned

    async def _current(
        self, handle: StreamHandle, messages: Sequence[NewMessage]
    ) -> dict[str, _Current]:
        """The stored message of each key in ``messages`` (compacting streams only)."""
        if not handle.options.one_message_per_key:
            return {}
        subjects = sorted({handle.root + m["key"] for m in messages})
        found = await self._conn.direct_get(
            handle.js_name, {"multi_last": subjects, "batch": len(subjects)}
        )
        out: dict[str, _Current] = {}
        for msg in found:
            headers = msg.headers or {}
            stored_ns = parse_rfc3339_ns(headers["Nats-Time-Stamp"])
            inserted = headers.get(HDR_INSERTED)
            out[headers["Nats-Subject"]] = _Current(
                data=msg.data,
                seq=int(headers["Nats-Sequence"]),
                updated_ns=stored_ns,
                inserted_ns=int(inserted) if inserted is not None else stored_ns,
            )
        return out

    # -- sending ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _slot(self, js_stream: str) -> AsyncIterator[None]:
        # JetStream allows 50 open atomic batches per stream; stay below it
        # from this gateway and retry when several gateways together exceed it.
        sem = self._slots.get(js_stream)
        if sem is None:
            sem = self._slots[js_stream] = asyncio.Semaphore(self._per_stream)
        async with sem:
            yield

    async def _send(
        self, planned: list[_Planned], seqs: dict[int, int], dups: dict[int, int]
    ) -> None:
        pending = planned
        for attempt in range(_ATTEMPTS):
            if not pending:
                return
            try:
                if len(pending) == 1:
                    seq, duplicate = await self._publish_one(pending[0])
                    (dups if duplicate else seqs)[pending[0].index] = seq
                    return
                last_seq, count = await self._publish_batch(pending)
                first = last_seq - count + 1
                for offset, p in enumerate(pending):
                    seqs[p.index] = first + offset
                return
            except JsApiError as exc:
                if exc.err_code == ERR_BATCH_DUPLICATE_ID:
                    found = await self._probe_duplicates(pending)
                    dups.update(found)
                    pending = [p for p in pending if p.index not in found]
                elif exc.err_code == ERR_BATCH_TOO_MANY_INFLIGHT:
                    await asyncio.sleep(0.01 * 2**attempt * (1 + random.random()))
                else:
                    raise
        raise JetStreamUnavailable("JetStream kept refusing the batch; try again")

    async def _publish_one(self, p: _Planned) -> tuple[int, bool]:
        msg = await self._conn.request(p.subject, p.payload, headers=p.headers or None)
        ack = orjson.loads(msg.data)
        err = api_error(ack)
        if err is not None:
            raise err
        return int(ack["seq"]), bool(ack.get("duplicate"))

    async def _publish_batch(self, planned: list[_Planned]) -> tuple[int, int]:
        batch_id = secrets.token_hex(16)
        last = len(planned)
        for n, p in enumerate(planned, 1):
            headers = {**p.headers, "Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(n)}
            if n < last:
                await self._conn.publish(p.subject, p.payload, headers=headers)
                continue
            headers["Nats-Batch-Commit"] = "1"
            msg = await self._conn.request(p.subject, p.payload, headers=headers)
        ack = orjson.loads(msg.data)
        err = api_error(ack)
        if err is not None:
            raise err
        return int(ack["seq"]), int(ack.get("count", last))

    async def _probe_duplicates(self, planned: list[_Planned]) -> dict[int, int]:
        """Which planned messages' ids JetStream has seen: index -> original seq."""
        never = "streamkit-probe-" + secrets.token_hex(16)

        async def probe(p: _Planned) -> tuple[int, int] | None:
            headers = {HDR_MSG_ID: p.headers[HDR_MSG_ID], "Nats-Expected-Last-Msg-Id": never}
            msg = await self._conn.request(p.subject, b"", headers=headers)
            ack = orjson.loads(msg.data)
            err = api_error(ack)
            if err is None and ack.get("duplicate"):
                return p.index, int(ack["seq"])
            if err is not None and err.err_code != ERR_WRONG_LAST_MSG_ID:
                raise err
            return None

        results = await asyncio.gather(*(probe(p) for p in planned if HDR_MSG_ID in p.headers))
        return dict(r for r in results if r is not None)

    async def _stored_times(self, handle: StreamHandle, seqs: set[int]) -> dict[int, datetime]:
        """When the messages at ``seqs`` were stored (absent if gone)."""

        async def one(seq: int) -> tuple[int, datetime] | None:
            found = await self._conn.direct_get(handle.js_name, {"seq": seq})
            if not found or found[0].headers is None:
                return None
            return seq, ns_to_datetime(parse_rfc3339_ns(found[0].headers["Nats-Time-Stamp"]))

        results = await asyncio.gather(*(one(s) for s in seqs))
        return dict(r for r in results if r is not None)
