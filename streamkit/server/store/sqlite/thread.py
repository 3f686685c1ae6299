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
from typing import Any, Generic, TypeVar

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


Outcome = tuple["asyncio.Future[Any]", bool, Any]
"""A job's future, whether the job succeeded, and its result or its exception."""


class Jobs(Generic[J]):
    """What the event loop hands one worker thread: jobs go in with a future each
    (`put`), the thread takes those waiting (`take`) and resolves their futures on
    the loop (`resolve`)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[J, asyncio.Future[Any]] | None] = queue.SimpleQueue()
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop the futures belong to (None before `open`)."""
        self.closed = False

    def open(self) -> None:
        """Take jobs from the running loop from now on."""
        self.loop = asyncio.get_running_loop()

    def put(self, job: J) -> asyncio.Future[Any]:
        """Queue ``job``; its future (`StoreClosed` once closed or before `open`)."""
        if self.closed or self.loop is None:
            raise StoreClosed("the store is closed")
        fut: asyncio.Future[Any] = self.loop.create_future()
        self._queue.put((job, fut))
        return fut

    def close(self) -> bool:
        """Refuse new jobs; the thread's `take` says stop after those queued. False if
        it was closed already."""
        if self.closed:
            return False
        self.closed = True
        self._queue.put(None)
        return True

    def take(self, most: int) -> tuple[list[tuple[J, asyncio.Future[Any]]], bool]:
        """(thread) Wait for a job, then take the ones queued behind it, ``most`` in all;
        and whether the thread is to stop after them. No jobs: stop now."""
        first = self._queue.get()
        if first is None:
            return [], True
        taken = [first]
        while len(taken) < most:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return taken, True
            taken.append(nxt)
        return taken, False

    def resolve(
        self, results: list[Outcome], settle: Callable[[list[Outcome]], None] | None = None
    ) -> None:
        """(thread) Have the loop resolve ``results`` (with ``settle``, else as they say)."""
        assert self.loop is not None
        # A closed loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(settle or _settle, results)


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
        self._jobs: Jobs[Job] = Jobs()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop whose futures this thread resolves (None before `start`)."""
        return self._jobs.loop

    async def start(self) -> None:
        """Start the thread and open its connection (raises if that fails)."""
        self._jobs.open()
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._startup_error is not None:
            self._jobs.close()
            raise self._startup_error

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue ``fn`` and return a future for its result (set after commit)."""
        fut: asyncio.Future[T] = self._jobs.put(fn)
        return fut

    async def stop(self, timeout: float = 30.0) -> None:
        """Finish queued jobs, close the connection and join the thread."""
        if self._jobs.close() and self._thread.is_alive():
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
                jobs, stopping = self._jobs.take(_MAX_GROUP)
                if not jobs:
                    return
                if self._transactional:
                    outcomes = self._run_group(conn, jobs)
                else:
                    outcomes = [self._run_one(conn, fn) for fn, _ in jobs]
                self._jobs.resolve(
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


def _settle(results: list[Outcome]) -> None:
    for fut, ok, value in results:
        if fut.done():  # the caller was cancelled; the work itself is done
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
