"""The default engine: one SQLite file, WAL, every write on one thread.

The event loop never touches SQLite. Writes (publish, receive, ack, ...) are
queued to a single writer thread which group-commits whatever is waiting in
one transaction; reads (listing, catch-up reads, stats) go to a separate
reader connection. The loop keeps a small cache of stream and consumer
identities (they never change after creation) so refs resolve without a
query and long-polls know what to wait on.

Retention is enforced on the writer: publishes trim what they push past the
limits, and a trimmer task (see ``retention``) trims the rest in small steps:
after a limit is lowered, and every `TRIM_INTERVAL` for messages aging out. It
removes a deleted stream's messages the same way.

Waiting is notification-driven: a publish wakes the waiters of its stream and
of its consumers, an ack/nack wakes its consumer's waiters when it makes
something deliverable, and a waiting receive also sleeps no longer than the
next ack deadline or nack delay of its consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Hashable, Sequence
from functools import partial
from pathlib import Path

from streamkit.protocol.wire import StartPosition
from streamkit.server.store.base import (
    DEFAULT_DEDUPE_WINDOW_MS,
    DEFAULT_INACTIVE_THRESHOLD_MS,
    AckRun,
    ConsumerRecord,
    ConsumerSpec,
    DeadLetter,
    Delivery,
    Message,
    MessageQuery,
    NewMessage,
    PublishResult,
    StoreConflict,
    StoreNotFound,
    StreamChanges,
    StreamOptions,
    StreamRecord,
)
from streamkit.server.store.sqlite import appends, disk, retention
from streamkit.server.store.sqlite import reads as reads
from streamkit.server.store.sqlite.checkpoint import Checkpointer
from streamkit.server.store.sqlite.datafiles import DataFiles, Place, close_read_files
from streamkit.server.store.sqlite.datawriter import DataWriter
from streamkit.server.store.sqlite.dedupe import DEFAULT_MAX_IDS
from streamkit.server.store.sqlite.lock import DatabaseLock
from streamkit.server.store.sqlite.rows import ConsumerMeta, StreamMeta, to_datetime
from streamkit.server.store.sqlite.schema import WAL_SIZE_LIMIT, Synchronous, connect, wal_of
from streamkit.server.store.sqlite.thread import SqliteThread
from streamkit.server.store.sqlite.writes import ReceiveResult, WriteOps

log = logging.getLogger(__name__)

_REAP_INTERVAL_MAX = 1.0
_REAP_INTERVAL_MIN = 0.02

PURGE_REST = 2.0
"""After each step removing a deleted stream's messages, the trimmer rests this many
times as long as the step took, so a purge takes at most a third of the writer's time."""
TRIM_INTERVAL = 1.0
"""Seconds between the trimmer's passes over streams with limits (``max_age_ms`` resolution)."""


class _Signals:
    """One-shot wake-ups keyed by stream or consumer: ``fire`` wakes everyone waiting."""

    def __init__(self) -> None:
        self._events: dict[Hashable, asyncio.Event] = {}
        self.stopped = False

    def event(self, key: Hashable) -> asyncio.Event:
        ev = self._events.get(key)
        if ev is None:
            ev = self._events[key] = asyncio.Event()
            if self.stopped:
                ev.set()
        return ev

    def fire(self, key: Hashable) -> None:
        ev = self._events.pop(key, None)
        if ev is not None:
            ev.set()

    def fire_all(self) -> None:
        self.stopped = True
        for ev in self._events.values():
            ev.set()
        self._events.clear()


async def _wait(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set or ``timeout`` seconds have passed.

    Not ``asyncio.wait_for(event.wait(), ...)``: on Python 3.11, a task cancelled in the
    same loop iteration as its event is set could stay stuck in ``wait_for`` for good
    (a store closed right after a stream was deleted never finished closing).
    """
    if timeout <= 0 or event.is_set():
        return
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait([waiter], timeout=timeout)
    finally:
        waiter.cancel()


class _StreamEntry:
    """A cached stream and its consumers, by id and by name."""

    __slots__ = ("consumers_by_id", "consumers_by_name", "meta")

    def __init__(self, meta: StreamMeta) -> None:
        self.meta = meta
        self.consumers_by_id: dict[str, ConsumerMeta] = {}
        self.consumers_by_name: dict[str, ConsumerMeta] = {}

    def add(self, c: ConsumerMeta) -> None:
        self.consumers_by_id[c.id] = c
        self.consumers_by_name[c.name] = c

    def remove(self, c: ConsumerMeta) -> None:
        self.consumers_by_id.pop(c.id, None)
        self.consumers_by_name.pop(c.name, None)

    def resolve(self, ref: str) -> ConsumerMeta:
        c = self.consumers_by_id.get(ref) or self.consumers_by_name.get(ref)
        if c is None:
            raise StoreNotFound("consumer")
        return c


class SqliteStore:
    """The embedded SQLite `Store`.

    ``synchronous="normal"`` survives a killed process (WAL); ``"full"`` also
    survives power loss at the cost of an fsync per group commit. Message ids
    are remembered ``dedupe_window_ms``, at most ``dedupe_max_ids`` of them
    (see `dedupe`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "normal",
        dedupe_window_ms: int = DEFAULT_DEDUPE_WINDOW_MS,
        dedupe_max_ids: int = DEFAULT_MAX_IDS,
    ) -> None:
        self.path = Path(path)
        self.synchronous: Synchronous = synchronous
        self._lock = DatabaseLock(self.path)
        self._files = DataFiles(self.path)
        self._ops = WriteOps(dedupe_window_ms, dedupe_max_ids)
        self._writer = SqliteThread(
            "streamkit-sqlite-writer",
            partial(connect, self.path, synchronous, autocheckpoint_bytes=WAL_SIZE_LIMIT),
            transactional=True,
            on_commit=self._committed,
            on_rollback=self._ops.rollback,
            on_disk_fault=self._disk_failed,
            after_jobs=close_read_files,
        )
        self._reader = SqliteThread(
            "streamkit-sqlite-reader",
            partial(connect, self.path, synchronous, readonly=True),
            transactional=False,
            after_jobs=close_read_files,
        )
        self._data = DataWriter(
            "streamkit-sqlite-data", self._files, on_disk_fault=self._disk_failed
        )
        self._checkpointer = Checkpointer(
            "streamkit-sqlite-checkpointer",
            partial(connect, self.path, synchronous, readonly=True),
            wal_of(self.path),
        )
        self._account_id = ""
        self._by_id: dict[str, _StreamEntry] = {}
        self._by_name: dict[str, _StreamEntry] = {}
        self._signals = _Signals()
        self._last_active: dict[int, float] = {}
        self._busy: dict[int, int] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._trimmer: asyncio.Task[None] | None = None
        self._trim_now = asyncio.Event()
        self._fault: str | None = None  # set by the writer thread, cleared by _recover
        self._faults = 0  # disk faults so far (writer thread)
        self._recovery: asyncio.Task[None] | None = None
        self._opened = False

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Create/open the database, load the catalog and start the reaper."""
        if self._opened:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._lock.acquire)  # DatabaseLocked: another server owns it
        try:
            await self._writer.start()
            self._account_id = await self._writer.run(self._ops.setup)
            await self._reader.start()
            _, streams, consumers = await self._reader.run(reads.load_catalog)
        except BaseException:
            await self._reader.stop()
            await self._writer.stop()
            self._lock.release()
            raise
        self._checkpointer.start()
        self._data.start()
        for s in streams:
            self._add_stream(s)
        now = asyncio.get_running_loop().time()
        for c in consumers:
            self._by_id[c.stream_id].add(c)
            self._last_active[c.cid] = now
        self._signals = _Signals()
        self._reaper = asyncio.create_task(self._reap(), name="streamkit-sqlite-reaper")
        self._trim_now = asyncio.Event()
        self._trimmer = asyncio.create_task(self._trim(), name="streamkit-sqlite-trimmer")
        self._opened = True
        if self._fault is not None:  # the disk failed us while opening
            self._start_recovery()

    async def close(self) -> None:
        """End waits, stop the reaper, finish queued writes and close the database."""
        self._opened = False
        self._signals.fire_all()
        for task in (self._reaper, self._trimmer, self._recovery):
            await _cancel(task)
        self._reaper = self._trimmer = self._recovery = None
        await asyncio.to_thread(self._checkpointer.stop)
        await self._reader.stop()
        await self._data.stop()
        await self._writer.stop()
        self._lock.release()

    def _committed(self) -> None:
        """The writer committed a transaction (runs on the writer's thread)."""
        self._ops.commit()
        self._checkpointer.committed()

    def _disk_failed(self, reason: str) -> None:
        """A transaction or a data file failed on the disk (runs on the writer's or the
        data thread)."""
        if self._fault is None:
            log.error("storage full or failing (%s): refusing writes until it recovers", reason)
        self._fault = reason
        self._faults += 1
        loop = self._writer.loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody to recover for
                loop.call_soon_threadsafe(self._start_recovery)

    def _start_recovery(self) -> None:
        if self._opened and (self._recovery is None or self._recovery.done()):
            self._recovery = asyncio.create_task(self._recover(), name="streamkit-sqlite-recovery")

    async def _recover(self) -> None:
        """While the disk is faulted: truncate the WAL and, once there is room, try a write."""
        while self._fault is not None:
            await asyncio.sleep(disk.RECOVERY_INTERVAL)
            faults = self._faults
            try:
                await self._reader.run(disk.checkpoint_truncate)
                if not await asyncio.to_thread(disk.has_room, self.path):
                    continue
                await self._writer.run(disk.probe)
            except Exception as exc:  # still failing: try again next round
                log.debug("storage still failing: %r", exc)
                continue
            if self._faults == faults:  # no write failed meanwhile
                log.warning("storage recovered: writes are accepted again")
                self._fault = None

    def fault(self) -> str | None:
        """Why writes are refused right now (the disk is full or failing), or None."""
        return None if self._fault is None else f"storage_full: {self._fault}"

    def stop_waiting(self) -> None:
        """End every current and future wait at once (the server is shutting down)."""
        self._signals.fire_all()

    # -- cache -----------------------------------------------------------------

    def _add_stream(self, meta: StreamMeta) -> _StreamEntry:
        entry = _StreamEntry(meta)
        self._by_id[meta.id] = entry
        self._by_name[meta.name] = entry
        return entry

    def _drop_stream(self, entry: _StreamEntry) -> None:
        self._by_id.pop(entry.meta.id, None)
        self._by_name.pop(entry.meta.name, None)

    def _stream(self, ref: str) -> _StreamEntry:
        entry = self._by_id.get(ref) or self._by_name.get(ref)
        if entry is None:
            raise StoreNotFound("stream")
        return entry

    def _consumer(self, stream: str, consumer: str) -> ConsumerMeta:
        return self._stream(stream).resolve(consumer)

    def _touch(self, c: ConsumerMeta) -> None:
        self._last_active[c.cid] = asyncio.get_running_loop().time()

    def _wake_stream(self, entry: _StreamEntry) -> None:
        self._signals.fire(("s", entry.meta.sid))
        for c in entry.consumers_by_id.values():
            self._signals.fire(("c", c.cid))

    # -- streams ---------------------------------------------------------------

    async def create_stream(self, name: str, options: StreamOptions) -> StreamRecord:
        """Create a stream; `StoreConflict` if the name is taken."""
        if name in self._by_name:
            raise StoreConflict("name")
        meta, record = await self._writer.run(
            partial(self._ops.create_stream, name=name, options=options)
        )
        self._add_stream(meta)
        return record

    async def list_streams(self) -> list[StreamRecord]:
        """All streams, oldest first."""
        return await self._reader.run(partial(reads.list_streams, account_id=self._account_id))

    async def get_stream(self, stream: str) -> StreamRecord:
        """One stream with fresh stats."""
        entry = self._stream(stream)
        return await self._reader.run(
            partial(reads.get_stream, sid=entry.meta.sid, account_id=self._account_id)
        )

    async def update_stream(self, stream: str, changes: StreamChanges) -> StreamRecord:
        """Change retention limits; a lowered limit is trimmed down to in small steps."""
        entry = self._stream(stream)
        record = await self._writer.run(
            partial(self._ops.update_stream, sid=entry.meta.sid, changes=changes)
        )
        self._wake_stream(entry)  # a first trim step may have freed max_ack_pending room
        self._trim_now.set()
        return record

    async def delete_stream(self, stream: str) -> str:
        """Delete a stream, its messages and its consumers; returns its id."""
        entry = self._stream(stream)
        # Forget it first: requests arriving from now on get a 404, and anything
        # queued before this delete runs before it on the writer.
        self._drop_stream(entry)
        try:
            await self._writer.run(partial(self._ops.delete_stream, sid=entry.meta.sid))
        except StoreNotFound:
            raise
        except BaseException:
            self._by_id[entry.meta.id] = entry
            self._by_name[entry.meta.name] = entry
            raise
        for c in entry.consumers_by_id.values():
            self._forget_consumer(c)
        self._wake_stream(entry)
        self._trim_now.set()  # the trimmer purges its messages
        return entry.meta.id

    # -- messages --------------------------------------------------------------

    async def publish(self, stream: str, messages: Sequence[NewMessage]) -> PublishResult:
        """Store a batch atomically, deduplicating by ``id``."""
        entry = self._stream(stream)
        batch = appends.prepare(entry.meta.sid, messages)
        places: list[Place] = []
        if batch.blobs:
            places = await self._data.append(batch.blobs)
            batch = batch.placed(places)
        try:
            job = self._writer.run(partial(self._ops.publish, sid=entry.meta.sid, batch=batch))
        finally:
            self._files.settle(places)  # `collect` runs on the writer too, after this job
        stored = await job
        if stored.published:
            self._wake_stream(entry)
        if stored.acks is not None:
            return PublishResult.of_acks(stored.published, stored.acks)
        run = AckRun(stored.first_seq, len(messages), to_datetime(stored.stored_us))
        return PublishResult(stored.published, [run])

    async def read_messages(self, stream: str, query: MessageQuery) -> list[Message]:
        """A page of messages; with ``wait_ms``, wait for at least one match."""
        entry = self._stream(stream)
        meta = entry.meta
        loop = asyncio.get_running_loop()
        deadline = loop.time() + query.wait_ms / 1000
        while True:
            event = self._signals.event(("s", meta.sid))
            found = await self._reader.run(
                partial(reads.read_messages, sid=meta.sid, stream_id=meta.id, query=query)
            )
            remaining = deadline - loop.time()
            if found or remaining <= 0 or self._signals.stopped:
                return found
            await _wait(event, remaining)
            self._stream(meta.id)  # 404 if it was deleted meanwhile

    # -- consumers -------------------------------------------------------------

    async def create_consumer(self, stream: str, spec: ConsumerSpec) -> ConsumerRecord:
        """Create a consumer; `StoreConflict` if the name is taken on this stream."""
        entry = self._stream(stream)
        if spec.name in entry.consumers_by_name:
            raise StoreConflict("name")
        if spec.ephemeral and spec.inactive_threshold_ms is None:
            spec = _with_threshold(spec)
        meta, record = await self._writer.run(
            partial(self._ops.create_consumer, sid=entry.meta.sid, spec=spec)
        )
        if self._by_id.get(entry.meta.id) is entry:
            entry.add(meta)
            self._touch(meta)
        return record

    async def list_consumers(self, stream: str) -> list[ConsumerRecord]:
        """The stream's consumers, oldest first."""
        entry = self._stream(stream)
        return await self._reader.run(
            partial(reads.list_consumers, sid=entry.meta.sid, account_id=self._account_id)
        )

    async def get_consumer(self, stream: str, consumer: str) -> ConsumerRecord:
        """One consumer with stats."""
        c = self._consumer(stream, consumer)
        return await self._reader.run(
            partial(reads.get_consumer, cid=c.cid, account_id=self._account_id)
        )

    async def delete_consumer(self, stream: str, consumer: str) -> str:
        """Delete a consumer and its delivery state; returns its id."""
        entry = self._stream(stream)
        c = entry.resolve(consumer)
        await self._delete_consumer(entry, c)
        return c.id

    async def _delete_consumer(self, entry: _StreamEntry, c: ConsumerMeta) -> None:
        entry.remove(c)
        try:
            await self._writer.run(partial(self._ops.delete_consumer, cid=c.cid))
        except StoreNotFound:
            raise
        except BaseException:
            entry.add(c)
            raise
        self._forget_consumer(c)

    def _forget_consumer(self, c: ConsumerMeta) -> None:
        self._last_active.pop(c.cid, None)
        self._signals.fire(("c", c.cid))

    async def receive(
        self, stream: str, consumer: str, batch_size: int, wait_ms: int = 0
    ) -> list[Delivery]:
        """Deliver up to ``batch_size`` messages, waiting up to ``wait_ms`` for the first."""
        c = self._consumer(stream, consumer)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_ms / 1000
        self._busy[c.cid] = self._busy.get(c.cid, 0) + 1
        try:
            while True:
                event = self._signals.event(("c", c.cid))
                result = await self._take(c, batch_size)
                self._touch(c)
                if result.deliveries:
                    return result.deliveries
                if result.more:
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0 or self._signals.stopped:
                    return []
                if result.next_due_ms is not None:
                    until_due = result.next_due_ms / 1000 - time.time()
                    remaining = min(remaining, max(until_due, 0.0) + 0.002)
                await _wait(event, remaining)
        finally:
            self._busy[c.cid] -= 1
            if not self._busy[c.cid]:
                del self._busy[c.cid]
            if c.cid in self._last_active:
                self._touch(c)

    async def _take(self, c: ConsumerMeta, batch_size: int) -> ReceiveResult:
        """One take in the writer thread. If the receiver is cancelled meanwhile (its
        client hung up), what the take hands out goes back at once, uncounted."""
        take = self._writer.run(partial(self._ops.receive, c=c, batch_size=batch_size))
        try:
            return await asyncio.shield(take)
        except asyncio.CancelledError:
            take.add_done_callback(partial(self._give_back, c))
            raise

    def _give_back(self, c: ConsumerMeta, take: asyncio.Future[ReceiveResult]) -> None:
        if take.cancelled() or take.exception() is not None:
            return
        ack_ids = [d["ack_id"] for d in take.result().deliveries]
        if ack_ids:
            released = self._writer.run(partial(self._ops.release, c=c, ack_ids=ack_ids))
            released.add_done_callback(partial(self._after_give_back, c))

    def _after_give_back(self, c: ConsumerMeta, released: asyncio.Future[bool]) -> None:
        if not released.cancelled() and released.exception() is None and released.result():
            self._signals.fire(("c", c.cid))

    async def ack(self, stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        """Acknowledge deliveries; unknown or stale ids are ignored."""
        c = self._consumer(stream, consumer)
        self._touch(c)
        if await self._writer.run(partial(self._ops.ack, c=c, ack_ids=ack_ids)):
            self._signals.fire(("c", c.cid))

    async def nack(
        self,
        stream: str,
        consumer: str,
        ack_ids: Sequence[str],
        delay_ms: int = 0,
        reason: str | None = None,
    ) -> None:
        """Give deliveries back for redelivery after ``delay_ms``, noting ``reason``."""
        c = self._consumer(stream, consumer)
        self._touch(c)
        nack = partial(self._ops.nack, c=c, ack_ids=ack_ids, delay_ms=delay_ms, reason=reason)
        if await self._writer.run(nack):
            self._signals.fire(("c", c.cid))

    async def release(self, stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        """Hand deliveries no client saw back, without counting the attempt."""
        c = self._consumer(stream, consumer)
        if await self._writer.run(partial(self._ops.release, c=c, ack_ids=ack_ids)):
            self._signals.fire(("c", c.cid))

    async def extend(self, stream: str, consumer: str, ack_ids: Sequence[str]) -> None:
        """Reset in-flight deliveries' ack deadlines."""
        c = self._consumer(stream, consumer)
        self._touch(c)
        await self._writer.run(partial(self._ops.extend, c=c, ack_ids=ack_ids))

    async def dead_letters(
        self, stream: str, consumer: str, limit: int, after_seq: int = 0
    ) -> list[DeadLetter]:
        """The consumer's dead-lettered messages past ``after_seq``, by seq."""
        c = self._consumer(stream, consumer)
        return await self._reader.run(
            partial(reads.dead_letters, consumer=c, limit=limit, after_seq=after_seq)
        )

    async def redrive(self, stream: str, consumer: str, seqs: Sequence[int] | None) -> int:
        """Dead letters (``seqs``, or all) are due again, with a fresh delivery count."""
        c = self._consumer(stream, consumer)
        moved: int = await self._writer.run(partial(self._ops.redrive, c=c, seqs=seqs))
        if moved:
            self._signals.fire(("c", c.cid))
        return moved

    async def discard_dead(self, stream: str, consumer: str, seqs: Sequence[int] | None) -> int:
        """Forget dead letters (``seqs``, or all) as if they were acked."""
        c = self._consumer(stream, consumer)
        gone: int = await self._writer.run(partial(self._ops.discard_dead, c=c, seqs=seqs))
        self._signals.fire(("c", c.cid))  # burying what ran out may have freed room
        return gone

    async def reset_consumer(self, stream: str, consumer: str, start: StartPosition) -> None:
        """Drop the consumer's delivery state and deliver from ``start`` on."""
        c = self._consumer(stream, consumer)
        await self._writer.run(partial(self._ops.reset_consumer, c=c, start=start))
        self._signals.fire(("c", c.cid))

    # -- retention -------------------------------------------------------------

    async def _trim(self) -> None:
        """Enforce retention limits, and remove deleted streams' messages, in steps of
        `retention.TRIM_BATCH` messages, one writer job each."""
        while True:
            await _wait(self._trim_now, TRIM_INTERVAL)
            self._trim_now.clear()
            try:
                await self._trim_pass()
            except Exception:  # keep trimming; the next pass retries
                log.exception("retention pass failed")

    async def _trim_pass(self) -> None:
        loop = asyncio.get_running_loop()
        for sid in await self._writer.run(retention.deleted_streams):
            purge = partial(retention.purge, sid=sid, budget=retention.TRIM_BATCH)
            while True:
                started = loop.time()
                if not await self._writer.run(purge):
                    break
                await asyncio.sleep((loop.time() - started) * PURGE_REST)
        pending = await self._reader.run(retention.streams_with_limits)
        while pending:
            still = []
            for sid in pending:
                step = await self._writer.run(
                    partial(self._ops.trim, sid=sid, budget=retention.TRIM_BATCH)
                )
                if step.removed:
                    self._wake_consumers(sid)
                if step.more:
                    still.append(sid)
            pending = still
        removed = await self._writer.run(self._files.collect)
        if removed:
            log.info("deleted data files no message refers to: %s", removed)

    def _wake_consumers(self, sid: int) -> None:
        for entry in list(self._by_id.values()):
            if entry.meta.sid == sid:
                for c in entry.consumers_by_id.values():
                    self._signals.fire(("c", c.cid))

    # -- ephemeral consumers ---------------------------------------------------

    def _ephemeral(self) -> list[tuple[_StreamEntry, ConsumerMeta]]:
        return [
            (entry, c)
            for entry in list(self._by_id.values())
            for c in list(entry.consumers_by_id.values())
            if c.inactive_threshold_ms is not None
        ]

    async def _reap(self) -> None:
        """Delete ephemeral consumers idle (no receive/ack/nack/extend) past their threshold."""
        loop = asyncio.get_running_loop()
        while True:
            candidates = self._ephemeral()
            interval = _REAP_INTERVAL_MAX
            for _, c in candidates:
                assert c.inactive_threshold_ms is not None
                interval = min(interval, c.inactive_threshold_ms / 4000)
            await asyncio.sleep(max(interval, _REAP_INTERVAL_MIN))
            now = loop.time()
            for entry, c in self._ephemeral():
                assert c.inactive_threshold_ms is not None
                idle = now - self._last_active.get(c.cid, now)
                if self._busy.get(c.cid) or idle * 1000 < c.inactive_threshold_ms:
                    continue
                try:
                    await self._delete_consumer(entry, c)
                except StoreNotFound:
                    pass
                except Exception:  # keep reaping; the next pass retries
                    log.exception("could not delete idle ephemeral consumer %s", c.name)
                else:
                    log.info("deleted idle ephemeral consumer %s/%s", entry.meta.name, c.name)


def _with_threshold(spec: ConsumerSpec) -> ConsumerSpec:
    return dataclasses.replace(spec, inactive_threshold_ms=DEFAULT_INACTIVE_THRESHOLD_MS)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (when there is one) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
