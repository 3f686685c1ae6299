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

The WAL's size is bounded too. A PASSIVE checkpoint copies frames but cannot
make the writer start the WAL over while it keeps appending. Whenever a
passive pass leaves more than `schema.WAL_SIZE_LIMIT` in the WAL, this thread
tries a RESTART checkpoint: it holds the writer only while it copies the few
frames committed since the passive pass, and the writer's next commit starts
the WAL over, cut back to the limit by ``journal_size_limit``. When a busy
writer leaves no moment for that, the backstop (`BACKSTOP_PAGES`) does the
same on the writer, so the WAL stays near 32 MiB (the soak saw 42 MiB at most,
at 122k events/s). Once no new
frames arrive for `IDLE_TRUNCATE` seconds, one ``wal_checkpoint(TRUNCATE)``
leaves an idle server with an empty WAL. (Idleness is judged by the WAL's
frames, not by commits: a commit that wrote nothing adds none.)
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from streamkit.server.store.sqlite.schema import WAL_SIZE_LIMIT

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 200
"""How long a RESTART or TRUNCATE checkpoint waits for the writer and readers before
giving up until the next pass (the writer waits on it meanwhile)."""

DEFAULT_INTERVAL = 0.25
"""Seconds between background checkpoints while there are commits."""

IDLE_TRUNCATE = 1.0
"""Seconds without new WAL frames after which the WAL is checkpointed and truncated to zero."""

BACKSTOP_PAGES = 2_048
"""The writer's own automatic checkpoint threshold (SQLite's default is 1000 pages).

It bounds the WAL under a load that never leaves this thread a moment to
restart it (32 MiB of 16 KiB pages): the writer then checkpoints what the
passive passes have not yet copied, and its next commit starts the WAL over."""


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
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            (page_size,) = conn.execute("PRAGMA page_size").fetchone()
            restart_frames = max(1, WAL_SIZE_LIMIT // page_size)
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
                if frames >= restart_frames:
                    self._checkpoint(conn, "RESTART", frames)
                if self._stopping.wait(self.interval):
                    return
        finally:
            conn.close()

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
