"""One thread owning one SQLite connection; the event loop hands it jobs.

In write mode every job already queued when the thread wakes runs inside ONE
transaction (group commit): N concurrent publishes cost one fsync, not N. Each
job runs inside its own savepoint, so a job that raises is rolled back alone
and the others still commit. Futures are resolved only after COMMIT returns,
so an awaited write is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from streamkit.server.store.base import StoreUnavailable
from streamkit.server.store.sqlite.disk import disk_fault, store_full

T = TypeVar("T")
J = TypeVar("J")
Job = Callable[[sqlite3.Connection], Any]

log = logging.getLogger(__name__)

_MAX_GROUP = 256
"""Most jobs folded into one transaction, so one commit never waits on an endless queue."""


class StoreClosed(StoreUnavailable):
    """The store's thread is stopped (or not started); no more work is accepted."""


class SqliteThread:
    """Runs jobs ``fn(conn)`` on a dedicated thread, in submission order."""

    def __init__(
        self,
        name: str,
        connect: Callable[[], sqlite3.Connection],
        *,
        transactional: bool,
        on_commit: Callable[[], None] | None = None,
        on_rollback: Callable[[], None] | None = None,
        on_disk_fault: Callable[[str], None] | None = None,
        after_jobs: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._after_jobs = after_jobs
        self._connect = connect
        self._transactional = transactional
        self._on_commit = on_commit
        self._on_rollback = on_rollback
        self._on_disk_fault = on_disk_fault
        self._queue: queue.SimpleQueue[tuple[Job, asyncio.Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop whose futures this thread resolves (None before `start`)."""
        return self._loop

    async def start(self) -> None:
        """Start the thread and open its connection (raises if that fails)."""
        self._loop = asyncio.get_running_loop()
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._startup_error is not None:
            self._closed = True
            raise self._startup_error

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue ``fn`` and return a future for its result (set after commit)."""
        if self._closed or self._loop is None:
            raise StoreClosed("the store is closed")
        fut: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((fn, fut))
        return fut

    async def stop(self, timeout: float = 30.0) -> None:
        """Finish queued jobs, close the connection and join the thread."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join, timeout)

    # -- the thread ------------------------------------------------------------

    def _main(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to start()
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                jobs, stopping = take_waiting(self._queue, _MAX_GROUP)
                if not jobs:
                    return
                if self._transactional:
                    outcomes = self._run_group(conn, jobs)
                else:
                    outcomes = [self._run_one(conn, fn) for fn, _ in jobs]
                self._resolve(
                    [(fut, ok, value) for (_, fut), (ok, value) in zip(jobs, outcomes, strict=True)]
                )
                if self._after_jobs is not None:
                    self._after_jobs()
                if stopping:
                    return
        finally:
            conn.close()

    @staticmethod
    def _run_one(conn: sqlite3.Connection, fn: Job) -> tuple[bool, Any]:
        try:
            return True, fn(conn)
        except BaseException as exc:
            return False, exc

    def _run_group(
        self, conn: sqlite3.Connection, jobs: list[tuple[Job, asyncio.Future[Any]]]
    ) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        try:
            if conn.in_transaction:  # a ROLLBACK after a disk fault failed too
                conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            for fn, _ in jobs:
                conn.execute("SAVEPOINT job")
                try:
                    value = fn(conn)
                except BaseException as exc:
                    if disk_fault(exc) is not None:
                        # SQLite may already have rolled the whole transaction back:
                        # fail the group as one, below.
                        raise
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((False, exc))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((True, value))
            conn.execute("COMMIT")
        except BaseException as exc:  # disk full or I/O error (in a job, or at COMMIT)
            reason = disk_fault(exc)
            if reason is None:
                log.exception("%s: transaction failed", self.name)
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if self._on_rollback is not None:
                self._on_rollback()
            if reason is None:
                return [(False, exc)] * len(jobs)
            if self._on_disk_fault is not None:
                self._on_disk_fault(reason)
            return [(False, store_full(reason)) for _ in jobs]
        if self._on_commit is not None:
            self._on_commit()
        return outcomes

    def _resolve(self, results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
        assert self._loop is not None
        # A closed loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_settle, results)


def take_waiting(jobs: queue.SimpleQueue[J | None], most: int) -> tuple[list[J], bool]:
    """Wait for a job, then take the ones queued behind it, ``most`` in all; and whether
    the stop mark (None) came. No jobs: it came first."""
    first = jobs.get()
    if first is None:
        return [], True
    taken = [first]
    while len(taken) < most:
        try:
            nxt = jobs.get_nowait()
        except queue.Empty:
            break
        if nxt is None:
            return taken, True
        taken.append(nxt)
    return taken, False


def _settle(results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for fut, ok, value in results:
        if fut.done():  # the caller was cancelled; the work itself is done
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
