"""WAL checkpoints on their own thread, so that the writer never stops to do them.

SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past
its threshold, on the committing thread: for the one writer of this engine,
that commit also copies the WAL into the database file and fsyncs it, and
every write queued behind it waits (about a sixth of the writer's time under
a steady publish load). Here the writer only says that it committed; a thread
with its own connection runs PASSIVE checkpoints, which never block the
writer, at most every ``interval`` seconds while there are new commits. The
writer keeps an automatic checkpoint with a higher threshold as a backstop,
in case this thread falls behind.

The WAL's size is bounded twice: the writer's ``journal_size_limit`` cuts it
back to `schema.WAL_SIZE_LIMIT` each time it restarts from the beginning under
load, and once commits stop for `IDLE_TRUNCATE` seconds this thread runs one
``wal_checkpoint(TRUNCATE)``, leaving an idle server with an empty WAL.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.25
"""Seconds between background checkpoints while there are commits."""

IDLE_TRUNCATE = 1.0
"""Seconds without a commit after which the WAL is checkpointed and truncated to zero."""

BACKSTOP_PAGES = 10_000
"""The writer's own automatic checkpoint threshold (SQLite's default is 1000 pages)."""


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on a thread after commits (see the module)."""

    def __init__(
        self,
        name: str,
        connect: Callable[[], sqlite3.Connection],
        *,
        interval: float = DEFAULT_INTERVAL,
        idle_truncate: float = IDLE_TRUNCATE,
    ) -> None:
        self.name = name
        self.interval = interval
        self.idle_truncate = idle_truncate
        self._connect = connect
        self._committed = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (it opens its connection itself)."""
        self._thread.start()

    def committed(self) -> None:
        """Note that the writer committed (called on the writer's thread: never blocks)."""
        self._committed.set()

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
            dirty = False  # commits since the WAL was last truncated
            while True:
                committed = self._committed.wait(self.idle_truncate if dirty else None)
                if self._stopping.is_set():
                    return
                if not committed:
                    self._checkpoint(conn, "TRUNCATE")
                    dirty = False
                    continue
                dirty = True
                self._committed.clear()
                self._checkpoint(conn, "PASSIVE")
                if self._stopping.wait(self.interval):
                    return
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> None:
        try:
            conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
        except sqlite3.Error:
            log.exception("%s: %s checkpoint failed", self.name, mode.lower())
