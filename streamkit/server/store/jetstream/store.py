"""The NATS JetStream engine: stateless gateways over a JetStream cluster.

Every fact lives in JetStream, so any number of gateways can serve the same
streams behind a load balancer, and any gateway can settle a delivery another
one handed out. How each `Store` method
maps (details in the modules named):

- stream -> a JetStream stream ``<prefix>_<name>`` on ``<prefix>.<id>.>``, its
  id, options and ``inserted_at`` in the stream's metadata (``jetstream_meta``);
  ``one_message_per_key`` -> ``max_msgs_per_subject=1``; the dedupe window ->
  ``duplicate_window``.
- publish -> one atomic batch (``jetstream_publish``); ``id`` -> ``Nats-Msg-Id``.
- read_messages -> batched direct gets (``jetstream_reads``).
- consumer -> a durable pull consumer (``filter_subject``, ``ack_wait``,
  ``max_ack_pending``, ``max_deliver``, ``deliver_policy``); ephemeral ones get
  JetStream's ``inactive_threshold``.
- receive -> pull requests; ack id -> the delivery's ``$JS.ACK`` reply subject,
  base64; ack/nack/extend -> ``+ACK`` / ``-NAK {"delay"}`` / ``+WPI`` on it.
- dead letters -> JetStream's max-deliveries advisories, captured by a stream
  ``<prefix>_<name>~dead`` created with the first consumer that has ``max_deliver``.
- stats -> stream and consumer info.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

import orjson
from nats.aio.msg import Msg

from streamkit.protocol.wire import StartPosition
from streamkit.server.store.base import (
    DEFAULT_DEDUPE_WINDOW_MS,
    ConsumerRecord,
    ConsumerSpec,
    ConsumerStats,
    DeadLetter,
    Delivery,
    Message,
    MessageQuery,
    NewMessage,
    PublishResult,
    StoreConflict,
    StoreError,
    StoreNotFound,
    StoreUnavailable,
    StoreUnsupported,
    StreamChanges,
    StreamOptions,
    StreamRecord,
)
from streamkit.server.store.jetstream.codec import (
    Naming,
    ack_id_for,
    datetime_to_ns,
    decode_message,
    parse_ack_id,
    parse_ack_subject,
    prefix_problem,
)
from streamkit.server.store.jetstream.conn import (
    API,
    ERR_CONSUMER_EXISTS,
    ERR_CONSUMER_NAME_EXISTS,
    ERR_STREAM_NAME_IN_USE,
    ERR_STREAM_NOT_FOUND,
    JetStreamUnavailable,
    JsApiError,
    JsConn,
    NoResponders,
    api_error,
    connect,
)
from streamkit.server.store.jetstream.dead import DeadLetters
from streamkit.server.store.jetstream.meta import (
    ERR_INSUFFICIENT_STORAGE,
    META_ID,
    Catalog,
    StreamHandle,
    check_name,
    consumer_config,
    consumer_record,
    handle_from_info,
    is_id,
    new_id,
    restarted_config,
    storage_refused,
    stream_config,
    stream_record,
    updated_stream_config,
)
from streamkit.server.store.jetstream.publish import BatchWriter
from streamkit.server.store.jetstream.reads import Reader

__all__ = ["JetStreamStore", "JetStreamUnavailable"]

RESET_GRACE = 0.5
"""Seconds a receive on a missing consumer waits for it to be back (a reset's gap)
before answering 404."""

log = logging.getLogger(__name__)

T = TypeVar("T")

_SHORT_PULL_MS = 10
"""How long a pull that must not wait may still linger for messages held back
by ``max_ack_pending`` (JetStream keeps even a ``no_wait`` pull open then)."""
_SETTLE_CHUNK = 1000
"""Ack ids settled concurrently at most."""


class JetStreamStore:
    """A `Store` over NATS JetStream.

    ``nats_urls`` are tried in turn at `open` (which fails with a clear
    `JetStreamUnavailable` when none answers or JetStream is off);
    afterwards the connection reconnects on its own whenever a server goes
    away. ``replicas`` is the replication factor of new streams (3 on a
    3-node cluster survives the loss of one node).
    """

    def __init__(
        self,
        nats_urls: str | Sequence[str] = "nats://127.0.0.1:4222",
        *,
        prefix: str = "streamkit",
        replicas: int = 1,
        dedupe_window_ms: int = DEFAULT_DEDUPE_WINDOW_MS,
        request_timeout: float = 5.0,
        ack_timeout: float = 2.0,
        connect_timeout: float = 5.0,
        reconnect_wait: float = 0.5,
        name: str = "streamkit-gateway",
    ) -> None:
        urls = [nats_urls] if isinstance(nats_urls, str) else list(nats_urls)
        urls = [u.strip() for url in urls for u in url.split(",") if u.strip()]
        if not urls:
            raise ValueError("at least one NATS URL is required")
        problem = prefix_problem(prefix)
        if problem:
            raise ValueError(f"prefix {prefix!r} {problem}")
        if replicas < 1:
            raise ValueError("replicas must be >= 1")
        self.nats_urls = urls
        self.naming = Naming(prefix)
        self.replicas = replicas
        self.dedupe_window_ms = dedupe_window_ms
        self.account_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"streamkit:jetstream:{prefix}"))
        self._request_timeout = request_timeout
        self._ack_timeout = ack_timeout
        self._connect_timeout = connect_timeout
        self._reconnect_wait = reconnect_wait
        self._client_name = name
        self._conn: JsConn | None = None
        self._catalog: Catalog | None = None
        self._writer: BatchWriter | None = None
        self._reader: Reader | None = None
        self._stop = asyncio.Event()
        self._dead_letters: DeadLetters | None = None

    # -- lifecycle --------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, check that JetStream is enabled, and get ready."""
        if self._conn is not None:
            return
        nc = await connect(
            self.nats_urls,
            name=self._client_name,
            connect_timeout=self._connect_timeout,
            reconnect_wait=self._reconnect_wait,
        )
        conn = JsConn(nc, timeout=self._request_timeout)
        try:
            await self._check_jetstream(conn)
            await conn.start()
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self._catalog = Catalog(conn, self.naming, ttl=5.0)
        self._writer = BatchWriter(conn)
        self._reader = Reader(conn)
        self._dead_letters = DeadLetters(conn, self.naming, self._catalog, replicas=self.replicas)
        self._stop = asyncio.Event()
        url = nc.connected_url
        log.info(
            "JetStream engine connected to %s (prefix %r, replicas %d)",
            url.netloc if url else "?",
            self.naming.prefix,
            self.replicas,
        )

    async def _check_jetstream(self, conn: JsConn) -> None:
        try:
            await conn.api("INFO")
        except JetStreamUnavailable:
            raise JetStreamUnavailable(
                f"JetStream is not enabled on the NATS server at {', '.join(self.nats_urls)} "
                "(start nats-server with -js, or enable jetstream in its config)"
            ) from None

    async def close(self) -> None:
        """End waits and close the connection. Idempotent."""
        self._stop.set()
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    def stop_waiting(self) -> None:
        """End every current and future wait at once (the server is shutting down)."""
        self._stop.set()

    def fault(self) -> str | None:
        """Always None: JetStream's own faults are answered per request (507 when full)."""
        return None

    @property
    def conn(self) -> JsConn:
        """The live connection; `StoreUnavailable` unless open."""
        if self._conn is None:
            raise StoreUnavailable("the JetStream store is not open")
        return self._conn

    @property
    def _cat(self) -> Catalog:
        if self._catalog is None or self._conn is None:
            raise StoreUnavailable("the JetStream store is not open")
        return self._catalog

    @property
    def _dead(self) -> DeadLetters:
        if self._dead_letters is None or self._conn is None:
            raise StoreUnavailable("the JetStream store is not open")
        return self._dead_letters

    # -- streams ----------------------------------------------------------------------

    async def create_stream(self, name: str, options: StreamOptions) -> StreamRecord:
        """Create a stream; `StoreConflict` if the name is taken."""
        stream_id = new_id()
        config = stream_config(
            self.naming,
            check_name(name, "stream"),
            stream_id,
            options,
            datetime_to_ns(_now()),
            replicas=self.replicas,
            dedupe_window_ms=self.dedupe_window_ms,
        )
        try:
            info = await self.conn.api(f"STREAM.CREATE.{config['name']}", config)
        except JsApiError as exc:
            if exc.err_code == ERR_STREAM_NAME_IN_USE:
                raise StoreConflict("name") from None
            if exc.err_code == ERR_INSUFFICIENT_STORAGE:
                raise storage_refused(options) from None
            raise
        handle = handle_from_info(self.naming, info)
        assert handle is not None
        self._cat.remember(handle)
        return stream_record(handle, info, self.account_id)

    async def list_streams(self) -> list[StreamRecord]:
        """All streams, oldest first."""
        found = await self._cat.list_infos()
        records = [stream_record(h, info, self.account_id) for h, info in found]
        return sorted(records, key=lambda r: (r.inserted_at, r.name))

    async def get_stream(self, stream: str) -> StreamRecord:
        """One stream with fresh stats."""
        handle, info = await self._stream_info(stream)
        return stream_record(handle, info, self.account_id)

    async def update_stream(self, stream: str, changes: StreamChanges) -> StreamRecord:
        """Change retention limits: the stream's ``max_msgs``/``max_bytes``/``max_age``."""
        handle, info = await self._stream_info(stream)
        options = handle.options.changed(changes)
        config = updated_stream_config(info["config"], options, self.dedupe_window_ms)
        try:
            updated = await self.conn.api(f"STREAM.UPDATE.{handle.js_name}", config)
        except JsApiError as exc:
            if exc.err_code == ERR_STREAM_NOT_FOUND:
                self._cat.forget(handle)
                raise StoreNotFound("stream") from None
            if exc.err_code == ERR_INSUFFICIENT_STORAGE:
                raise storage_refused(options) from None
            raise
        new_handle = handle_from_info(self.naming, updated)
        assert new_handle is not None
        self._cat.remember(new_handle)
        return stream_record(new_handle, updated, self.account_id)

    async def _stream_info(self, ref: str) -> tuple[StreamHandle, dict[str, Any]]:
        if not is_id(ref):
            found = await self._cat.info(check_name(ref, "stream"))
            if found is None:
                raise StoreNotFound("stream")
            return found
        handle = await self._cat.stream(ref)
        found = await self._cat.info(handle.name)
        if found is None or found[0].id != handle.id:
            self._cat.forget(handle)
            raise StoreNotFound("stream")
        return found

    async def delete_stream(self, stream: str) -> str:
        """Delete a stream with its messages, consumers and dead letters; returns its id."""
        handle = await self._cat.stream(stream)
        self._cat.forget(handle)
        try:
            await self.conn.api(f"STREAM.DELETE.{handle.js_name}")
        except JsApiError as exc:
            if exc.err_code == ERR_STREAM_NOT_FOUND:
                raise StoreNotFound("stream") from None
            raise
        await self._dead.delete_stream(handle)
        return handle.id

    # -- messages --------------------------------------------------------------------------

    async def publish(self, stream: str, messages: Sequence[NewMessage]) -> PublishResult:
        """Store messages atomically (all or nothing), deduplicating by ``id``."""
        writer = self._writer
        if writer is None or self._conn is None:
            raise StoreUnavailable("the JetStream store is not open")
        return await self._with_handle(stream, lambda h: writer.publish(h, messages))

    async def read_messages(self, stream: str, query: MessageQuery) -> list[Message]:
        """Read stored messages; with ``query.wait_ms`` wait for at least one match."""
        reader, stop = self._reader, self._stop
        if reader is None or self._conn is None:
            raise StoreUnavailable("the JetStream store is not open")
        return await self._with_handle(stream, lambda h: reader.read(h, query, stop))

    async def _with_handle(self, ref: str, operation: Callable[[StreamHandle], Awaitable[T]]) -> T:
        """Run ``operation(handle)``; if nothing answers, re-resolve once (stale cache)."""
        handle = await self._cat.stream(ref)
        try:
            return await operation(handle)
        except NoResponders:
            self._cat.forget(handle)
        fresh = await self._cat.stream(ref)
        if fresh.id == handle.id:
            raise JetStreamUnavailable(f"stream {handle.name!r} is not answering") from None
        return await operation(fresh)

    # -- consumers ----------------------------------------------------------------------------

    async def create_consumer(self, stream: str, spec: ConsumerSpec) -> ConsumerRecord:
        """Create a consumer; `StoreConflict` if the name is taken on this stream."""
        handle = await self._cat.stream(stream)
        name = check_name(spec.name, "consumer")
        if spec.max_deliver is not None:
            await self._dead.ensure_stream(handle)
        config = consumer_config(handle, spec, new_id(), datetime_to_ns(_now()))
        body = {"stream_name": handle.js_name, "config": config, "action": "create"}
        endpoint = f"CONSUMER.CREATE.{handle.js_name}.{name}.{config['filter_subject']}"
        try:
            info = await self.conn.api(endpoint, body)
        except JsApiError as exc:
            if exc.err_code in (ERR_CONSUMER_EXISTS, ERR_CONSUMER_NAME_EXISTS):
                raise StoreConflict("name") from None
            if exc.err_code == ERR_STREAM_NOT_FOUND:
                self._cat.forget(handle)
                raise StoreNotFound("stream") from None
            raise
        if spec.max_deliver is not None:
            # Advisories left by an earlier consumer of this name are not ours.
            await self._dead.purge(handle, name)
        record = consumer_record(handle, info, self.account_id)
        assert record is not None
        self._cat.remember_consumer(handle, record.id, name)
        return record

    async def list_consumers(self, stream: str) -> list[ConsumerRecord]:
        """The stream's consumers, oldest first (without stats)."""
        handle = await self._cat.stream(stream)
        records = [
            r
            for info in await self._cat.consumer_infos(handle)
            if (r := consumer_record(handle, info, self.account_id)) is not None
        ]
        return sorted(records, key=lambda r: (r.inserted_at, r.name))

    async def get_consumer(self, stream: str, consumer: str) -> ConsumerRecord:
        """One consumer, with stats (pending = never delivered, in_flight = unacked)."""
        handle = await self._cat.stream(stream)
        name = await self._cat.consumer_name(handle, consumer)
        info = await self._cat.consumer_info(handle, name)
        record = consumer_record(handle, info, self.account_id)
        if record is None:
            raise StoreNotFound("consumer")
        dead = 0
        if record.max_deliver is not None:
            info, dead = await self._dead.sweep(handle, name, info)
        stats = ConsumerStats(
            pending=int(info.get("num_pending", 0)),
            in_flight=int(info.get("num_ack_pending", 0)),
            dead=dead,
        )
        return consumer_record(handle, info, self.account_id, stats) or record

    async def delete_consumer(self, stream: str, consumer: str) -> str:
        """Delete a consumer, its delivery state and dead letters; returns its id."""
        handle = await self._cat.stream(stream)
        name = await self._cat.consumer_name(handle, consumer)
        info = await self._cat.consumer_info(handle, name)
        consumer_id = str(((info.get("config") or {}).get("metadata") or {}).get(META_ID, ""))
        try:
            await self.conn.api(f"CONSUMER.DELETE.{handle.js_name}.{name}")
        except JsApiError:
            # Deleted meanwhile (another gateway): a 404 like any unknown consumer.
            await self._cat.consumer_info(handle, name)
            raise
        self._cat.forget_consumer(handle, consumer_id)
        await self._dead.purge(handle, name)
        return consumer_id

    # -- delivery ------------------------------------------------------------------------------

    async def _names(self, stream: str, consumer: str) -> tuple[str, str]:
        """JetStream stream and consumer names for refs, without a lookup for plain names."""
        if is_id(stream) or is_id(consumer):
            handle = await self._cat.stream(stream)
            return handle.js_name, await self._cat.consumer_name(handle, consumer)
        return (
            self.naming.js_stream(check_name(stream, "stream")),
            check_name(consumer, "consumer"),
        )

    async def _missing(self, js_stream: str, consumer: str) -> StoreError:
        """Why nothing answered for this consumer: the error to raise."""
        try:
            await self.conn.api(f"CONSUMER.INFO.{js_stream}.{consumer}")
        except JsApiError as exc:
            if exc.err_code == ERR_STREAM_NOT_FOUND:
                return StoreNotFound("stream")
            return StoreNotFound("consumer")
        return JetStreamUnavailable(f"consumer {consumer!r} is not answering")

    async def receive(
        self, stream: str, consumer: str, batch_size: int, wait_ms: int = 0
    ) -> list[Delivery]:
        """Deliver up to ``batch_size`` messages, waiting up to ``wait_ms`` for the first."""
        js_stream, name = await self._names(stream, consumer)
        try:
            try:
                msgs = await self._pull(js_stream, name, batch_size, wait_ms)
            except NoResponders:
                raise await self._missing(js_stream, name) from None
        except StoreNotFound as exc:
            if exc.kind == "consumer" and await self._came_back(js_stream, name):
                return []  # reset (deleted and created again) under this pull
            raise
        return [self._delivery(m) for m in msgs]

    async def _came_back(self, js_stream: str, name: str) -> bool:
        """Whether a consumer found missing exists again within `RESET_GRACE` seconds:
        `reset_consumer` deletes and creates it, and the workers polling it through
        any gateway should see an empty receive then, not a 404."""
        loop = asyncio.get_running_loop()
        end = loop.time() + RESET_GRACE
        pause = 0.01
        while loop.time() < end and not self._stop.is_set():
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
            try:
                await self.conn.api(f"CONSUMER.INFO.{js_stream}.{name}")
            except JsApiError:
                continue
            return True
        return False

    async def _pull(self, js_stream: str, name: str, batch: int, wait_ms: int) -> list[Msg]:
        conn = self.conn
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_ms / 1000
        # 1. What is there now. JetStream keeps even a no_wait pull open while
        # max_ack_pending holds messages back, hence the short expiry.
        msgs, status = await conn.pull(
            js_stream, name, batch=batch, expires_ms=_SHORT_PULL_MS, no_wait=True
        )
        self._check_status(status)
        if msgs:
            return msgs
        # 2. Wait for one. A pull for a single message ends as soon as it has
        # it, so nothing is ever delivered to a request we stopped reading.
        while not msgs and not self._stop.is_set():
            remaining_ms = int((deadline - loop.time()) * 1000)
            if remaining_ms <= 0:
                return []
            pulled = await self._until_stopped(
                conn.pull(js_stream, name, batch=1, expires_ms=remaining_ms, no_wait=False)
            )
            if pulled is None:
                return []
            msgs, status = pulled
            self._check_status(status)
            if not msgs and status is not None and status.startswith("409"):
                await asyncio.sleep(min(0.05, max(deadline - loop.time(), 0)))
        # 3. Top up the batch with whatever else is ready.
        if msgs and batch > 1:
            more, status = await conn.pull(
                js_stream, name, batch=batch - 1, expires_ms=_SHORT_PULL_MS, no_wait=True
            )
            msgs.extend(more)
        return msgs

    @staticmethod
    def _check_status(status: str | None) -> None:
        if status is not None and "Consumer Deleted" in status:
            raise StoreNotFound("consumer")

    async def _until_stopped(self, work: Awaitable[T]) -> T | None:
        """``await work``, or None as soon as `stop_waiting` is called."""
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not task.done():
                task.cancel()
            await asyncio.gather(stopper, return_exceptions=True)
        with contextlib.suppress(asyncio.CancelledError):
            return await task
        return None

    def _delivery(self, msg: Msg) -> Delivery:
        ref = parse_ack_subject(msg.reply)
        if ref is None:  # pragma: no cover - JetStream always sends an ack subject
            raise StoreError(f"unexpected reply subject {msg.reply!r}")
        _, stream_id, _ = msg.subject.split(".", 2)
        message = decode_message(
            msg.subject,
            msg.data,
            msg.headers,
            ref.stream_seq,
            ref.timestamp_ns,
            self.naming.root(stream_id),
            stream_id,
        )
        return {
            "ack_id": ack_id_for(msg.reply),
            "message": message,
            "delivery_count": ref.delivery_count,
        }

    async def ack(self, stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        """Acknowledge deliveries; unknown, stale or malformed ids are ignored."""
        await self._settle(stream, consumer, ack_ids, b"+ACK")

    async def nack(
        self,
        stream: str,
        consumer: str,
        ack_ids: Sequence[str],
        delay_ms: int = 0,
        reason: str | None = None,
    ) -> None:
        """Give deliveries back for redelivery after ``delay_ms``. A NAK carries no
        reason, so ``reason`` is not kept: dead letters have no ``last_error`` here."""
        payload = b"-NAK"
        if delay_ms > 0:
            payload += b" " + orjson.dumps({"delay": delay_ms * 1_000_000})
        await self._settle(stream, consumer, ack_ids, payload)

    async def release(self, stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        """Give back deliveries no client saw. JetStream counts a delivery when it sends
        it and cannot take that back, so this is a plain NAK: the attempt counts."""
        await self.nack(stream, consumer, ack_ids)

    async def extend(self, stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        """Reset the ack deadline of in-flight deliveries to a full ``ack_wait_ms``."""
        await self._settle(stream, consumer, ack_ids, b"+WPI")

    async def _settle(
        self, stream: str, consumer: str, ack_ids: Sequence[str], payload: bytes
    ) -> None:
        js_stream, name = await self._names(stream, consumer)
        subjects = list(
            dict.fromkeys(
                ref.subject
                for ack_id in ack_ids
                if (ref := parse_ack_id(ack_id, js_stream, name)) is not None
            )
        )
        if not subjects:
            # Nothing to send, but a missing stream or consumer is still a 404.
            missing = await self._missing(js_stream, name)
            if isinstance(missing, StoreNotFound):
                raise missing
            return
        conn = self.conn
        for start in range(0, len(subjects), _SETTLE_CHUNK):
            chunk = subjects[start : start + _SETTLE_CHUNK]
            if not await conn.settle(chunk, payload, self._ack_timeout):
                missing = await self._missing(js_stream, name)
                if isinstance(missing, StoreNotFound):
                    raise missing

    # -- dead letters ---------------------------------------------------------------------------

    async def dead_letters(
        self, stream: str, consumer: str, limit: int, after_seq: int = 0
    ) -> list[DeadLetter]:
        """Messages the consumer dead-lettered after ``max_deliver`` deliveries, by seq."""
        handle = await self._cat.stream(stream)
        name = await self._cat.consumer_name(handle, consumer)
        info = await self._cat.consumer_info(handle, name)
        if int((info.get("config") or {}).get("max_deliver", -1)) <= 0:
            return []
        await self._dead.sweep(handle, name, info)
        return await self._dead.messages(handle, name, limit, after_seq)

    async def redrive(self, stream: str, consumer: str, seqs: Sequence[int] | None) -> int:
        """Not on JetStream: it never delivers a message again once ``max_deliver`` is
        spent, and has no way to give one message a fresh count."""
        handle = await self._cat.stream(stream)
        name = await self._cat.consumer_name(handle, consumer)
        await self._cat.consumer_info(handle, name)  # an unknown consumer is a 404 first
        raise StoreUnsupported(
            "redrive is not supported by the jetstream engine: JetStream never delivers"
            " a message again after max_deliver; reset the consumer to a seq or time instead"
        )

    async def discard_dead(self, stream: str, consumer: str, seqs: Sequence[int] | None) -> int:
        """Forget dead letters (``seqs``, or all): their advisories are deleted."""
        handle = await self._cat.stream(stream)
        name = await self._cat.consumer_name(handle, consumer)
        info = await self._cat.consumer_info(handle, name)
        if int((info.get("config") or {}).get("max_deliver", -1)) <= 0:
            return 0
        await self._dead.sweep(handle, name, info)
        return await self._dead.discard(handle, name, seqs)

    async def reset_consumer(self, stream: str, consumer: str, start: StartPosition) -> None:
        """Seek: the consumer delivers from ``start`` on, its dead letters forgotten.

        On nats-server 2.14 and later, ``CONSUMER.RESET`` moves the consumer in place
        (ADR-60); older servers have no such API, and the consumer is created again
        (same name, id and options), a receive in between waiting for it (see
        `_came_back`). Either way JetStream numbers the new deliveries as it did the
        old ones, so an ack id from before the reset can settle a new delivery.
        """
        handle = await self._cat.stream(stream)
        name = await self._cat.consumer_name(handle, consumer)
        info = await self._cat.consumer_info(handle, name)
        seq = await self._start_seq(handle, start)
        if not await self._reset_in_place(handle, name, seq):
            await self._recreate(handle, name, dict(info.get("config") or {}), start)
        await self._dead.purge(handle, name)

    async def _start_seq(self, handle: StreamHandle, start: StartPosition) -> int:
        """The stream seq a consumer starting at ``start`` delivers first (or would)."""
        info = await self.conn.api(f"STREAM.INFO.{handle.js_name}")
        state: dict[str, Any] = info.get("state") or {}
        first, last = max(int(state.get("first_seq", 1)), 1), int(state.get("last_seq", 0))
        if start == "all":
            return first
        if start == "new":
            return last + 1
        if isinstance(start, datetime):
            reader = self._reader
            if reader is None:
                raise StoreUnavailable("the JetStream store is not open")
            at = await reader.first_seq_at(handle, start)
            return last + 1 if at is None else at
        return max(start, first)

    async def _reset_in_place(self, handle: StreamHandle, name: str, seq: int) -> bool:
        """``CONSUMER.RESET`` to ``seq``; False when the server has no such API."""
        subject = f"{API}.CONSUMER.RESET.{handle.js_name}.{name}"
        try:
            reply = await self.conn.request(subject, orjson.dumps({"seq": seq}))
        except NoResponders:
            return False
        error = api_error(orjson.loads(reply.data))
        if error is not None:
            raise error
        return True

    async def _recreate(
        self, handle: StreamHandle, name: str, config: dict[str, Any], start: StartPosition
    ) -> None:
        """Delete the consumer and create it again with ``config``, starting at ``start``."""
        config = restarted_config(config, start)
        try:
            await self.conn.api(f"CONSUMER.DELETE.{handle.js_name}.{name}")
        except JsApiError:
            await self._cat.consumer_info(handle, name)  # deleted meanwhile: a 404
            raise
        body = {"stream_name": handle.js_name, "config": config, "action": "create"}
        await self.conn.api(
            f"CONSUMER.CREATE.{handle.js_name}.{name}.{config['filter_subject']}", body
        )


def _now() -> datetime:
    return datetime.now(timezone.utc)
