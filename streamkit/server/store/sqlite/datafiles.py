"""Large messages' data in append-only files beside the database.

A row of a few KB spills into SQLite overflow pages, and every page is written
twice (to the WAL, then by the checkpoint into the database file) with a copy
or two on the way: a 16 KB message cost the writer about 75 µs, four fifths of
it in the kernel. Appending the same bytes to a plain file costs about 7.

- Data of `FILE_DATA_CHARS` characters or more goes to a data file; its row keeps
  ``data = ''``, ``data_file, data_offset, data_bytes`` and the CRC-32 of those
  bytes, ``data_crc`` (`FILE_COLUMNS`). Every read checks it (`read`): a damaged
  file fails the read (`DataFileDamaged`) instead of sending other data. Smaller
  data stays in its row, as before. The CRC is zlib's CRC-32, computed by
  zlib-ng when the ``fast`` extra installed it (`crc`): the same sums, 18 times
  faster than zlib's (a tenth of the server's CPU per 64 KB message).
- Files are ``<database>-data/<n>.dat``, at most about `FILE_BYTES` each. Only the
  data thread (`datawriter.DataWriter`) appends (`DataFiles.append`), then syncs
  once for all the batches it appended at once (`DataFiles.sync`), and only then
  are their rows queued to the writer. Where the file system allows it, the
  bytes go past the page cache (`directio`): the batches of a round are copied
  into one buffer and written by the sync, in one write. So a
  committed row never points at bytes a crash or a power cut can lose, and the
  writer's transactions never wait on a data file. Bytes no row ends up referring
  to (a crash, a failed or deduplicated batch) are left where they are; a server
  starts a new file when it opens.
- Rows of ``rows.MESSAGE_COLUMNS`` say where such data is, and
  ``rows.messages_from_rows`` reads it (`read_data`, on the engine's connections,
  which know their directory). A thread keeps the files it read open until its
  round of jobs ends (`close_read_files`).
- `DataFiles.collect` (each retention pass, on the writer) deletes a file once no
  row has referred to it for two passes in a row: the index ``messages_by_data_file``
  answers, and the pass in between lets a reader that fetched a row just before
  its deletion still find the file. The file being appended to, and files holding
  batches whose rows are not committed yet (`DataFiles.settle`), are never taken.
- Storage accounting (``storage_size``) counts such data in UTF-8 bytes
  (`accounted_size`), which is what its row records; inline data counts
  characters, as before.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from streamkit.server.store.sqlite import directio
from streamkit.server.store.sqlite.crc import crc32, crc32_keeping_gil

log = logging.getLogger(__name__)

FILE_DATA_CHARS = 4096
"""Data this long or longer (in characters) is kept in a data file. With the
engine's 16 KiB pages, a row much past 4 KB spills into overflow pages."""
FILE_BYTES = 64 * 1024 * 1024
"""A data file takes no new batch once it holds this many bytes."""
FILE_COLUMNS = ("data_file", "data_offset", "data_bytes", "data_crc")
"""The columns that say where a row's data lives when it is not in ``data``, and
the CRC-32 its bytes there must have."""
_SUFFIX = ".dat"
_IOV_MAX = 1024

Blob = bytes | memoryview
"""A message's data as a data file takes it: its UTF-8 bytes."""
Place = tuple[int, int, int, int]
"""Where a message's data went, and its checksum: the values of `FILE_COLUMNS`."""


def directory_of(database: Path) -> Path:
    """The directory holding the data files of ``database``."""
    return database.with_name(database.name + "-data")


def accounted_size(data: str | memoryview) -> int:
    """What a message's data adds to ``storage_size``: characters when it stays in its
    row, UTF-8 bytes when it goes to a data file (`FILE_DATA_CHARS`). (Data given as
    a memoryview is ASCII: its length is both.)"""
    if len(data) < FILE_DATA_CHARS or not isinstance(data, str) or data.isascii():
        return len(data)
    return len(data.encode())


def stored_size(data: str, data_bytes: int | None) -> int:
    """What a stored row's data counts in ``storage_size``, as `accounted_size` counted
    it: ``data_bytes`` when the data is in a data file, else its characters (``len``
    in Python: SQL's ``length()`` stops at a NUL)."""
    return len(data) if data_bytes is None else data_bytes


class DataFileDamaged(sqlite3.DatabaseError):
    """A row's data is not in its data file as the row says: the file is shorter, or
    the bytes fail their checksum. Like a damaged database page, it fails the read."""


_reading = threading.local()
_MAX_OPEN = 16


def read(directory: Path, file: int, offset: int, size: int, crc: int | None) -> str:
    """``size`` bytes at ``offset`` of data file ``file``, as text; `DataFileDamaged`
    unless they have the CRC-32 ``crc`` (None: stored by format 4, which kept none).

    The file stays open for this thread's next reads, until `close_read_files`."""
    path = directory / f"{file}{_SUFFIX}"
    fds = _open_for_reading()
    fd = fds.get(path)
    if fd is None:
        if len(fds) >= _MAX_OPEN:
            close_read_files()
        fd = fds[path] = os.open(path, os.O_RDONLY)
    raw = os.pread(fd, size, offset)
    if len(raw) != size:
        raise DataFileDamaged(f"data file {path} ends before byte {offset + size}")
    if crc is not None and crc32(raw) != crc:
        raise DataFileDamaged(
            f"data file {path} is damaged: the {size} bytes at {offset} fail their checksum"
        )
    return raw.decode()


def close_read_files() -> None:
    """Close the data files this thread opened to read. The store's threads call it
    after each round of jobs, so an idle thread keeps no deleted file alive."""
    fds = _open_for_reading()
    for fd in fds.values():
        os.close(fd)
    fds.clear()


def _open_for_reading() -> dict[Path, int]:
    """This thread's data files open for reading, by path."""
    fds: dict[Path, int] = _reading.__dict__.setdefault("fds", {})
    return fds


class Connection(sqlite3.Connection):
    """A connection that knows where its database keeps data files (``connect`` makes
    every connection of the engine one), so rows read on it can be completed."""

    data_directory: Path | None = None


def read_data(conn: sqlite3.Connection, file: int, offset: int, size: int, crc: int | None) -> str:
    """The data of a row read on ``conn`` that keeps it in data file ``file``."""
    directory = getattr(conn, "data_directory", None)
    if directory is None:
        raise sqlite3.DatabaseError(
            f"a message's data is in data file {file}, which this "
            "connection cannot read (not opened by the engine)"
        )
    return read(directory, file, offset, size, crc)


class DataFiles:
    """The data files of one database: appended to by the data thread (`append`,
    `sync`), collected by the writer (`collect`)."""

    def __init__(
        self, database: Path, file_bytes: int = FILE_BYTES, *, direct: bool = True
    ) -> None:
        self.directory = directory_of(database)
        self.file_bytes = file_bytes
        # None once the file system refused direct writes (or never asked for)
        self._direct = directio.DirectAppender() if direct and directio.supported() else None
        self._fd: int | None = None
        self._file = 0  # the number of the file being appended to
        self._size = 0  # its length
        self._dirty = False  # written since the last sync
        self._unreferenced: set[int] = set()  # found so by the last `collect`
        # What `collect` must not take: `_file` (set before its file is created) and
        # the files of batches whose rows are not committed yet (or failed). Shared by
        # the data thread, the event loop (`settle`) and the writer (`collect`).
        self._lock = threading.Lock()
        self._unsettled: Counter[int] = Counter()

    @property
    def direct(self) -> bool:
        """Whether appends bypass the page cache (`directio`); turned off for good when
        the file system refuses it."""
        return self._direct is not None

    def files(self) -> list[int]:
        """The numbers of the data files on disk, in order."""
        if not self.directory.is_dir():
            return []
        return sorted(int(p.stem) for p in self.directory.glob(f"*{_SUFFIX}") if p.stem.isdigit())

    def append(self, blobs: Sequence[Blob]) -> list[Place]:
        """Append ``blobs`` to the current file (durable after the next `sync`); where
        each went. The file counts as unsettled until `settle` is given these places."""
        if not blobs:
            return []
        fd = self._file_for(sum(map(len, blobs)))
        with self._lock:
            self._unsettled[self._file] += 1
        places = []
        offset = self._size
        for blob in blobs:
            places.append((self._file, offset, len(blob), crc32_keeping_gil(blob)))
            offset += len(blob)
        self._dirty = True
        try:
            self._write(fd, blobs)
        except OSError:
            self.settle(places)
            self._drop()  # its length is unknown now: the next batch starts a new file
            raise
        self._size = offset
        return places

    def _write(self, fd: int, blobs: Sequence[Blob]) -> None:
        """Write ``blobs`` at the end of the current file's data (a direct write may
        wait for the buffer to fill, or for `sync`)."""
        if self._direct is not None:
            self._direct.append(fd, blobs, self._size)
        else:
            _write_all(fd, blobs, self._size)

    def sync(self) -> None:
        """Make what was appended since the last call durable."""
        if self._fd is not None and self._dirty:
            try:
                if self._direct is not None:
                    self._direct.flush(self._fd, self._size)
                os.fdatasync(self._fd)
            except OSError:
                self._drop()
                raise
            self._dirty = False

    def settle(self, places: Sequence[Place]) -> None:
        """The rows of a batch `append` placed at ``places`` are committed, or will never
        be: its file may be collected once no row refers to it."""
        if places:
            with self._lock:
                file = places[0][0]  # a batch goes to one file
                self._unsettled[file] -= 1
                if self._unsettled[file] <= 0:
                    del self._unsettled[file]

    def _file_for(self, size: int) -> int:
        """The open file to append ``size`` bytes to (a new one when the current is full)."""
        if self._fd is not None and self._size and self._size + size > self.file_bytes:
            self.sync()  # unsynced batches may be in it: durable before it is closed
            self.close()
        if self._fd is None:
            self.directory.mkdir(exist_ok=True)
            existing = self.files()
            with self._lock:  # `collect` leaves this number alone from now on
                self._file = max(existing[-1], self._file) + 1 if existing else self._file + 1
            path = self.directory / f"{self._file}{_SUFFIX}"
            self._fd = self._create(path)
            self._size = 0
            fsync_path(self.directory)  # the new name survives a power cut
        return self._fd

    def _create(self, path: Path) -> int:
        """Create the data file at ``path``, open for direct writes if it can be."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        if self._direct is not None:
            try:
                fd = os.open(path, flags | directio.open_flags(), 0o644)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._no_direct(exc)
                path.unlink(missing_ok=True)  # some file systems create it, then refuse
            else:
                return self._start_direct(fd, self._direct)
        return os.open(path, flags, 0o644)

    def _start_direct(self, fd: int, appender: directio.DirectAppender) -> int:
        """``fd``, just created with ``O_DIRECT``: written directly from now on, unless
        its first write is refused, when it is written through the page cache."""
        try:
            appender.start(fd)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                os.close(fd)
                raise
            self._no_direct(exc)
            directio.stop_direct(fd)
        return fd

    def _no_direct(self, exc: OSError) -> None:
        log.info("%s: no direct writes (%s); writing through the page cache", self.directory, exc)
        self._direct = None

    def collect(self, conn: sqlite3.Connection) -> list[int]:
        """Delete the files no row referred to, in this pass nor the last; their numbers."""
        with self._lock:
            busy = {self._file, *self._unsettled}
        removed = []
        unreferenced = set()
        for file in self.files():
            if file in busy:
                continue
            referred = conn.execute(
                "SELECT 1 FROM messages WHERE data_file = ? LIMIT 1", (file,)
            ).fetchone()
            if referred is not None:
                continue
            if file in self._unreferenced:
                (self.directory / f"{file}{_SUFFIX}").unlink(missing_ok=True)
                removed.append(file)
            else:
                unreferenced.add(file)
        self._unreferenced = unreferenced
        return removed

    def close(self) -> None:
        """Close the file being appended to (the next append starts a new one)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._dirty = False

    def _drop(self) -> None:
        """Close the file after a failed write or sync: the batches in it fail, so
        their bytes need not be durable."""
        with contextlib.suppress(OSError):
            self.close()
        self._fd = None


def with_places(
    columns: tuple[str, ...], values: list[object], places: Sequence[Place | None] | None
) -> tuple[tuple[str, ...], list[object]]:
    """Rows of ``columns`` (flattened in ``values``) as they are to be inserted, given
    where each row's data went (``places``, None for data kept inline): when any went
    to a data file, its ``data`` is ``''`` and every row gets `FILE_COLUMNS` too (NULL
    for data that stays inline). Else unchanged."""
    if places is None or not any(places):
        return columns, values
    width = len(columns)
    at = columns.index("data")
    out: list[object] = []
    for row, place in enumerate(places):
        cells = values[row * width : (row + 1) * width]
        if place is None:
            out += cells
            out += (None, None, None, None)
        else:
            cells[at] = ""
            out += cells
            out += place
    return columns + FILE_COLUMNS, out


def _write_all(fd: int, blobs: Sequence[Blob], offset: int) -> None:
    """``pwritev`` until every byte of ``blobs`` is written, from ``offset`` on."""
    pending = [memoryview(b) for b in blobs if b]
    while pending:
        done = os.pwritev(fd, pending[:_IOV_MAX], offset)
        offset += done
        while pending and done >= len(pending[0]):
            done -= len(pending[0])
            pending.pop(0)
        if pending and done:
            pending[0] = pending[0][done:]


def fsync_path(path: Path) -> None:
    """``fsync`` the file or directory at ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
