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
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.25
"""Seconds between background checkpoints while there are commits."""

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
    ) -> None:
        self.name = name
        self.interval = interval
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
            while True:
                self._committed.wait()
                if self._stopping.is_set():
                    return
                self._committed.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.exception("%s: checkpoint failed", self.name)
                if self._stopping.wait(self.interval):
                    return
        finally:
            conn.close()
