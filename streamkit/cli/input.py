"""Reading ``publish`` input (a file or stdin) without blocking the event loop.

A daemon thread reads the input a chunk at a time (``read1``: whatever is
available, so lines typed at a terminal go out at once while a big file is
read in large chunks) and hands the chunks to the loop; `LineReader.batches`
yields the complete lines of each chunk. The thread is a daemon and waits on a
bounded number of unread chunks, so a blocked read never holds up Ctrl-C or
the exit, and a fast producer never fills memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import threading
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO

__all__ = ["LineReader"]

CHUNK_SIZE = 64 * 1024
MAX_UNREAD_CHUNKS = 8

_Item = bytes | BaseException


def _size_of(source: BinaryIO) -> int | None:
    """The byte size of a regular file (for a progress bar); None for pipes and terminals."""
    try:
        info = os.fstat(source.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


class LineReader:
    """The lines of a binary input, read in a background thread.

    ``bytes_read`` counts the bytes handed out so far and ``total`` is the input's
    size when it is a regular file.
    """

    def __init__(self, source: BinaryIO, *, chunk_size: int = CHUNK_SIZE) -> None:
        self.source = source
        self.chunk_size = chunk_size
        self.total = _size_of(source)
        self.bytes_read = 0
        self._slots = threading.Semaphore(MAX_UNREAD_CHUNKS)
        self._stopped = False

    def _read_loop(self, post: Callable[[_Item], None]) -> None:
        read = getattr(self.source, "read1", None) or self.source.read
        while True:
            self._slots.acquire()
            if self._stopped:
                return
            try:
                chunk: bytes = read(self.chunk_size)
            except BaseException as exc:  # handed to the loop, raised there
                post(exc)
                return
            post(chunk)
            if not chunk:
                return

    async def batches(self) -> AsyncIterator[list[bytes]]:
        """Yield the complete lines of each chunk read, without their ``\\n``."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Item] = asyncio.Queue()

        def post(item: _Item) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, item)

        thread = threading.Thread(
            target=self._read_loop, args=(post,), name="streamkit-cli-input", daemon=True
        )
        thread.start()
        rest = b""
        try:
            while True:
                item = await queue.get()
                self._slots.release()
                if isinstance(item, BaseException):
                    raise item
                self.bytes_read += len(item)
                if not item:
                    if rest:
                        yield [rest]
                    return
                lines = (rest + item).split(b"\n")
                rest = lines.pop()
                if lines:
                    yield lines
        finally:
            self._stopped = True
            self._slots.release()
