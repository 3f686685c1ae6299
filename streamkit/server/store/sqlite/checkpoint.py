"""WAL checkpoints on their own thread, so that the writer seldom stops to do them.

SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past
its threshold, on the committing thread: for the one writer of this engine,
that commit copies the WAL into the database file and fsyncs it, and every
write queued behind it waits. Here the writer only says that it committed; a
thread with its own connection runs PASSIVE checkpoints, which never block
the writer, at most every ``interval`` seconds while there are new commits.

A PASSIVE checkpoint cannot make the WAL start over while the writer keeps
appending, so the WAL's size is bounded by the writer itself: its automatic
checkpoint runs when the WAL reaches `schema.WAL_SIZE_LIMIT` (8 MiB), copies
only the frames written since the last pass, and as the writer is not
appending meanwhile, its next transaction starts the WAL over.
No other connection ever takes the write lock under load. That matters more
than the copy: a connection that finds the lock taken waits in SQLite's busy
handler, which sleeps 1, 2, 5, 10, 15... ms between tries, so a 3 ms hold by
another thread costs the writer 8 ms, and a checkpoint that waits for readers
while holding the lock (RESTART) stalled it for 30 to 200 ms.

Once no new frames arrive for `IDLE_TRUNCATE` seconds, one
``wal_checkpoint(TRUNCATE)`` leaves an idle server with an empty WAL.
(Idleness is judged by the WAL's frames, not by commits: a commit that wrote
nothing adds none.)

Between checkpoints the same thread syncs the WAL file (``fdatasync``) every
`FLUSH_INTERVAL` while there are commits. With ``synchronous=NORMAL`` SQLite
syncs the WAL only when it checkpoints and when the writer starts the WAL over;
both happen in the writer's COMMIT, and that sync wrote every frame since the
last one: at 1000 small publishes a second, megabytes, 3 to 9 ms during which
every write queued behind it waited (the p99 of publish->deliver). Synced from
here, little is left for the writer's sync. It changes nothing about what a
commit promises: no commit waits for it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 200
"""How long the idle TRUNCATE checkpoint waits for the writer and readers before giving
up until the next pass."""

DEFAULT_INTERVAL = 0.25
"""Seconds between background checkpoints while there are commits.

Shorter intervals leave the writer's own checkpoint less to copy (publish->deliver
p99 fell from 11-12 ms to about 7.5 at 50 ms), but they copy the WAL into the
database file sooner, before the WAL can start over: on a nearly full disk that
space is gone earlier, and the disk-full recovery test saw a 507 again in 2 of 6
runs at 50 ms (none in 6 at 0.25 s)."""

IDLE_TRUNCATE = 1.0
"""Seconds without new WAL frames after which the WAL is checkpointed and truncated to zero."""

FLUSH_INTERVAL = 0.02
"""Seconds between syncs of the WAL file while there are commits (see the module)."""


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on a thread after commits, and syncs the
    WAL file at ``wal`` in between (see the module)."""

    def __init__(
        self,
        name: str,
        connect: Callable[[], sqlite3.Connection],
        wal: Path,
        *,
        interval: float = DEFAULT_INTERVAL,
        idle_truncate: float = IDLE_TRUNCATE,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.name = name
        self.wal = wal
        self.interval = interval
        self.idle_truncate = idle_truncate
        self.flush_interval = flush_interval
        self.flushes = 0
        """WAL syncs done so far."""
        self._connect = connect
        self._committed = threading.Event()  # cleared by each checkpoint pass
        self._unflushed = threading.Event()  # cleared by each sync of the WAL
        self._wal_fd: int | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (it opens its connection itself)."""
        self._thread.start()

    def committed(self) -> None:
        """Note that the writer committed (called on the writer's thread: never blocks)."""
        self._committed.set()
        self._unflushed.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread, waiting for a checkpoint in progress (blocks: run it in a thread)."""
        self._stopping.set()
        self._committed.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _main(self) -> None:
        try:
            conn = self._connect()
        except (sqlite3.Error, OSError):
            log.exception("%s: cannot open the database; the writer checkpoints alone", self.name)
            return
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            frames = 0  # frames in the WAL at the last pass
            quiet_since = time.monotonic()  # when the WAL last changed
            while True:
                self._committed.wait(self.idle_truncate if frames else None)
                if self._stopping.is_set():
                    return
                self._committed.clear()
                now = time.monotonic()
                seen = self._checkpoint(conn, "PASSIVE", frames)
                if seen != frames:
                    frames, quiet_since = seen, now
                elif frames and now - quiet_since >= self.idle_truncate:
                    frames = self._checkpoint(conn, "TRUNCATE", frames)
                    continue
                if self._rest():
                    return
        finally:
            conn.close()
            if self._wal_fd is not None:
                os.close(self._wal_fd)

    def _rest(self) -> bool:
        """Wait `interval` before the next checkpoint, syncing the WAL every
        `flush_interval` meanwhile when there were commits; True when stopping."""
        deadline = time.monotonic() + self.interval
        while (left := deadline - time.monotonic()) > 0:
            if self._stopping.wait(min(self.flush_interval, left)):
                return True
            if self._unflushed.is_set():
                self._unflushed.clear()
                self._flush()
        return False

    def _flush(self) -> None:
        """``fdatasync`` the WAL file through a descriptor of our own."""
        # Failures are left to the writer: its own syncs meet the same error (each
        # descriptor sees it), and it reports disk faults. Without a WAL yet, or a
        # descriptor to spare, the writer's syncs do it all, as without this thread.
        try:
            if self._wal_fd is None:
                self._wal_fd = os.open(self.wal, os.O_RDONLY)
            os.fdatasync(self._wal_fd)
        except OSError as exc:
            log.debug("%s: no sync of the WAL: %s", self.name, exc)
            return
        self.flushes += 1

    def _checkpoint(self, conn: sqlite3.Connection, mode: str, frames: int) -> int:
        """Run one checkpoint; returns the frames now in the WAL (``frames`` if unknown)."""
        try:
            row = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error:
            log.exception("%s: %s checkpoint failed", self.name, mode.lower())
            return frames
        if row is None or row[0] or row[1] < 0:  # busy: the WAL is as it was
            return frames
        return int(row[1])
