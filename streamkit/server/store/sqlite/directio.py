"""Appending to a data file opened with ``O_DIRECT``: the bytes go from one aligned
buffer to the disk, without a copy in the page cache.

Written through the page cache, every 64 KB of data cost 15 µs to 200 µs of
kernel time on the bench's virtual machine: each write takes fresh page-cache
pages, and on a virtual machine whose free memory the host has taken back,
touching such a page is a fault in the host as well. The data is synced at once
anyway (`DataFiles.sync`), so nothing waited to be written back later. Written
directly, the same 64 KB cost 5 µs to 10 µs of CPU (the copy into the buffer),
and the thread waits for the disk without the GIL. Publishing 64 KB events, the
server's CPU per event went from 183 to 268 µs to 142 to 153. Readers still read
through the page cache, which Linux keeps coherent with direct writes; data
read soon after it was written is read from the disk.

A file system may refuse ``O_DIRECT`` when the file is opened (tmpfs, for one)
or at its first write: `DirectAppender.start` writes a block as soon as a file
is created, and `datafiles.DataFiles` writes through the page cache from then on.

A direct write starts and ends on a `BLOCK` boundary, from memory aligned as
well. So `DirectAppender` writes whole blocks: the file's last partial block
stays in its buffer and is written again, followed by the new bytes, by the
next flush. Those bytes are the same, so a crash during that write leaves the
data already there as it was. The file ends with up to ``BLOCK - 1`` bytes of
zeros past its last data, which no row refers to.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Sequence

BLOCK = 4096
"""The alignment of a direct write's offset, length and memory: a multiple of the
logical block size of any disk with blocks up to 4 KiB."""
CHUNK = 4 * 1024 * 1024
"""The size of the aligned buffer: a direct write sends at most this many bytes (two
of the publisher's largest requests)."""
_ZEROS = bytes(BLOCK)


def supported() -> bool:
    """Whether this platform has ``O_DIRECT`` at all (Linux does, macOS does not)."""
    return hasattr(os, "O_DIRECT")


def open_flags() -> int:
    """The flag to add to ``os.open`` to write a file directly."""
    return getattr(os, "O_DIRECT", 0)


def stop_direct(fd: int) -> None:
    """Write the file open as ``fd`` through the page cache from now on."""
    import fcntl  # not on Windows, where `supported` is False and this is never called

    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~open_flags())


class DirectAppender:
    """Appends to one file at a time, opened with ``O_DIRECT``, through one aligned buffer.

    The buffer holds the file's data from a block boundary on: the last partial
    block (already written) and what was appended since the last `flush`.
    `append` writes the buffer out each time it fills; `flush` writes the rest,
    padded to a whole block, and keeps the partial block for the appends after
    it. So a round of small batches costs one write, and no write ever waits for
    the GIL between two batches' copies.
    """

    def __init__(self, chunk: int = CHUNK) -> None:
        if chunk % BLOCK or chunk < BLOCK:
            raise ValueError(f"chunk must be a positive multiple of {BLOCK}")
        self._buffer = mmap.mmap(-1, chunk)  # anonymous maps start on a page
        self._view = memoryview(self._buffer)
        self._base = 0  # the file offset of the buffer's first byte

    def start(self, fd: int) -> None:
        """Take a new, empty file: write one block of zeros to it, so that a file system
        that takes ``O_DIRECT`` at open but not in writes says so now (``EINVAL``)."""
        self._base = 0
        self._view[:BLOCK] = _ZEROS
        write_at(fd, self._view[:BLOCK], 0)

    def append(self, fd: int, blobs: Sequence[bytes | memoryview], size: int) -> None:
        """Add ``blobs`` after the first ``size`` bytes of the file's data, which
        were appended here."""
        view, chunk = self._view, len(self._view)
        fill = size - self._base
        for blob in blobs:
            data = memoryview(blob)
            while data:
                n = min(len(data), chunk - fill)
                view[fill : fill + n] = data[:n]
                fill += n
                data = data[n:]
                if fill == chunk:
                    write_at(fd, view, self._base)
                    self._base += chunk
                    fill = 0

    def flush(self, fd: int, size: int) -> None:
        """Write what the buffer holds of the file's first ``size`` bytes of data."""
        view = self._view
        fill = size - self._base
        if not fill:
            return
        end = -(-fill // BLOCK) * BLOCK
        view[fill:end] = _ZEROS[: end - fill]
        write_at(fd, view[:end], self._base)
        keep = fill % BLOCK
        if keep and fill > keep:  # (when fill == keep, the block is already in place)
            view[:keep] = view[fill - keep : fill]
        self._base = size - keep


def write_at(fd: int, data: memoryview, offset: int) -> None:
    """Write all of ``data`` (whole blocks) at ``offset`` of ``fd``."""
    while data:
        done = os.pwritev(fd, [data], offset)
        if done <= 0 or done % BLOCK:  # the rest could not be aligned any more
            raise OSError(errno.EIO, f"a direct write stopped after {done} bytes")
        data = data[done:]
        offset += done
