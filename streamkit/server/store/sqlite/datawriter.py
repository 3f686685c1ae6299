"""The data thread: large data goes to data files, durably, before its rows are queued.

A publish whose batch has large data (`datafiles.FILE_DATA_CHARS`) hands the
encoded data here first (`DataWriter.append`). The thread appends each waiting
batch (`datafiles.DataFiles.append`) and then syncs once for all of them, as the
writer's group commit does for rows; each batch learns where its data went
only then. So the writer's transactions insert rows that point at bytes already
on disk: they never write a data file nor wait for its sync, and a sync runs
while the writer commits other batches. With the writer doing both, the sync
alone was about a third of its time at 64 KB messages.

A disk fault (full, I/O error) fails all the batches of that round with
`StoreFull`, as it fails the writer's whole group, and is reported like the
writer's (``on_disk_fault``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from streamkit.server.store.sqlite.datafiles import Blob, DataFiles, Place
from streamkit.server.store.sqlite.disk import disk_fault, store_full
from streamkit.server.store.sqlite.thread import Jobs, Outcome

log = logging.getLogger(__name__)

_MAX_ROUND = 64
"""Most batches appended before one sync, so a sync never waits on an endless queue."""


class DataWriter:
    """Appends and syncs large data on its own thread (`append`); owns no connection."""

    def __init__(
        self,
        name: str,
        files: DataFiles,
        *,
        on_disk_fault: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.files = files
        self._on_disk_fault = on_disk_fault
        self._jobs: Jobs[Sequence[Blob]] = Jobs()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread; its futures resolve on the running loop."""
        self._jobs.open()
        self._thread.start()

    def append(self, blobs: Sequence[Blob]) -> asyncio.Future[list[Place]]:
        """Queue ``blobs``; the future gives where each went, once they are durable. The
        caller `DataFiles.settle` s those places once the job storing their rows is
        queued to the writer (`collect` runs there, after it)."""
        fut: asyncio.Future[list[Place]] = self._jobs.put(blobs)
        return fut

    async def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, close the file and join the thread."""
        if not self._jobs.close():
            return
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, timeout)
        self.files.close()

    # -- the thread ------------------------------------------------------------

    def _main(self) -> None:
        while True:
            jobs, stopping = self._jobs.take(_MAX_ROUND)
            if not jobs:
                return
            self._jobs.resolve(self._round(jobs), self._settle)
            if stopping:
                return

    def _round(self, jobs: list[tuple[Sequence[Blob], asyncio.Future[Any]]]) -> list[Outcome]:
        """Append every job's blobs, then sync once: each job's places. If an append
        or the sync fails, every job of the round fails with that error: a failed
        append closes the file unsynced, with the batches before it in it."""
        placed: list[list[Place]] = []
        try:
            for blobs, _ in jobs:
                placed.append(self.files.append(blobs))
            self.files.sync()
        except Exception as exc:
            for places in placed:
                self.files.settle(places)
            error = self._failure(exc)
            return [(fut, False, error) for _, fut in jobs]
        return [(fut, True, places) for (_, fut), places in zip(jobs, placed, strict=True)]

    def _failure(self, exc: Exception) -> Exception:
        """What a job fails with: `StoreFull` for a disk fault (reported), else ``exc``."""
        reason = disk_fault(exc)
        if reason is None:
            log.error("%s: writing a data file failed: %r", self.name, exc)
            return exc
        if self._on_disk_fault is not None:
            self._on_disk_fault(reason)
        return store_full(reason)

    def _settle(self, results: list[Outcome]) -> None:
        """(loop) Resolve a round's futures; a cancelled caller's places are settled."""
        for fut, ok, value in results:
            if fut.done():  # the caller was cancelled: its data will have no rows
                if ok:
                    self.files.settle(value)
            elif ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
