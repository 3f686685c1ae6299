"""The data thread (`datawriter`): large data is durable before its rows are queued,
batches waiting on a sync share the next one, the writer never waits on it, and no
file a batch is still on its way to is collected."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from streamkit.server.store.base import MessageQuery, NewMessage, StoreFull, StreamOptions
from streamkit.server.store.sqlite.datafiles import FILE_DATA_CHARS, DataFiles
from streamkit.server.store.sqlite.datawriter import DataWriter
from streamkit.server.store.sqlite.schema import connect, create_schema
from streamkit.server.store.sqlite.store import SqliteStore
from tests.faults.integrity import check_db

LARGE = "L" * FILE_DATA_CHARS


class HeldSyncs:
    """``os.fdatasync`` that counts its calls and, while `hold` is set, waits for
    `release` (bounded), so jobs pile up behind a sync in progress."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.hold = True
        self._real = os.fdatasync

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if self.hold:
            self.started.set()
            self.release.wait(10)
        self._real(fd)


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldSyncs]:
    held = HeldSyncs()
    monkeypatch.setattr(os, "fdatasync", held)
    yield held
    held.release.set()  # never leave the thread waiting


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    await store.create_stream("large", StreamOptions())
    await store.create_stream("small", StreamOptions())
    yield store
    await store.close()


def _large(n: int, tag: str = "") -> list[NewMessage]:
    return [{"key": "k", "data": f"{tag}{i}{LARGE}"} for i in range(n)]


async def _started(syncs: HeldSyncs) -> None:
    assert await asyncio.to_thread(syncs.started.wait, 10)


async def test_batches_that_wait_while_a_sync_runs_share_the_next_sync(
    tmp_path: Path, syncs: HeldSyncs
) -> None:
    writer = DataWriter("test-data", DataFiles(tmp_path / "s.db"))
    writer.start()
    try:
        first = writer.append([b"a" * 10])
        await _started(syncs)  # the first round's sync is running; these three wait
        rest = [writer.append([bytes([65 + i]) * 10]) for i in range(3)]
        await asyncio.sleep(0.05)
        assert not first.done() and not any(f.done() for f in rest)  # none before its sync
        syncs.hold = False
        syncs.release.set()
        places = [await first] + [await f for f in rest]
        assert syncs.calls == 2  # one per round: the three waiting shared one
        assert [p[0][1:3] for p in places] == [(0, 10), (10, 10), (20, 10), (30, 10)]
    finally:
        await writer.stop()
    raw = (DataFiles(tmp_path / "s.db").directory / f"{places[0][0][0]}.dat").read_bytes()
    assert raw[:40] == b"a" * 10 + b"A" * 10 + b"B" * 10 + b"C" * 10
    assert not raw[40:].strip(b"\0")  # direct writes end on a block: zeros after the data


async def test_the_writer_stores_other_batches_while_a_data_sync_runs(
    store: SqliteStore, syncs: HeldSyncs, tmp_path: Path
) -> None:
    large = asyncio.create_task(store.publish("large", _large(3)))
    await _started(syncs)
    small = await asyncio.wait_for(store.publish("small", [{"key": "k", "data": "x"}]), 5)
    assert small.published == 1 and not large.done()
    with sqlite3.connect(tmp_path / "s.db") as other:  # none of the large rows yet
        assert other.execute("SELECT COUNT(*) FROM messages").fetchone() == (1,)
    syncs.hold = False
    syncs.release.set()
    assert (await large).published == 3
    stored = await store.read_messages("large", MessageQuery())
    assert [m["data"] for m in stored] == [m["data"] for m in _large(3)]


async def test_a_failed_sync_stores_nothing_and_reports_the_disk(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = os.fdatasync

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)
    with pytest.raises(StoreFull):
        await store.publish("large", _large(2))
    assert store.fault() is not None  # refused until recovery finds the disk healthy
    monkeypatch.setattr(os, "fdatasync", real)
    assert await store.read_messages("large", MessageQuery()) == []
    store._fault = None  # what recovery does once the disk works again
    await store.publish("large", _large(2, "again "))
    stored = await store.read_messages("large", MessageQuery())
    want = [(i + 1, m["data"]) for i, m in enumerate(_large(2, "again "))]
    assert [(m["seq"], m["data"]) for m in stored] == want
    check_db(tmp_path / "s.db").assert_ok()


@pytest.mark.parametrize("direct", [False, True], ids=["buffered", "direct"])
async def test_a_failed_write_fails_the_batches_written_before_it_in_its_round(
    tmp_path: Path, syncs: HeldSyncs, monkeypatch: pytest.MonkeyPatch, direct: bool
) -> None:
    files = DataFiles(tmp_path / "s.db", direct=direct)
    writer = DataWriter("test-data", files)
    writer.start()
    try:
        await_first = writer.append([b"a" * 10])
        await _started(syncs)  # the next round holds both of these
        written: list[int] = []
        real_pwritev = os.pwritev

        def fails(fd: int, buffers: Any, offset: int) -> int:
            # Buffered, each batch is written on its own: the second write fails.
            # Direct, the round's batches go out in one write, at its sync: it fails.
            if written or files.direct:
                raise OSError(errno.ENOSPC, "No space left on device")
            written.append(fd)
            return real_pwritev(fd, buffers, offset)

        monkeypatch.setattr(os, "pwritev", fails)
        before, failing = writer.append([b"b" * 10]), writer.append([b"c" * 10])
        syncs.hold = False
        syncs.release.set()
        await await_first
        # "b" went into a file that was then closed unsynced: it fails with "c".
        for fut in (before, failing):
            with pytest.raises(StoreFull):
                await fut
        monkeypatch.setattr(os, "pwritev", real_pwritev)
        (place,) = await writer.append([b"d" * 10])
        assert place[0] == 2  # a new file: the first was closed at the failure
    finally:
        await writer.stop()


async def test_a_file_is_not_collected_while_a_batch_is_on_its_way_to_it(
    tmp_path: Path, syncs: HeldSyncs
) -> None:
    db = tmp_path / "s.db"
    files = DataFiles(db, file_bytes=10)  # every batch starts a file of its own
    writer = DataWriter("test-data", files)
    writer.start()
    conn = connect(db, "normal")
    create_schema(conn)
    try:
        syncs.hold = False
        placed = await writer.append([b"a" * 10])  # in file 1; its rows not committed yet
        await writer.append([b"b" * 10])  # file 2 is now the current one
        assert files.collect(conn) == [] and files.collect(conn) == []
        assert files.files() == [1, 2]
        files.settle(placed)  # its rows are queued (here: never were)
        assert files.collect(conn) == []  # a reader may still be on its way
        assert files.collect(conn) == [1]
    finally:
        conn.close()
        await writer.stop()


async def test_a_caller_cancelled_while_its_data_is_written_leaves_no_file_held(
    tmp_path: Path, syncs: HeldSyncs
) -> None:
    db = tmp_path / "s.db"
    files = DataFiles(db, file_bytes=10)
    writer = DataWriter("test-data", files)
    writer.start()
    conn = connect(db, "normal")
    create_schema(conn)
    try:
        cancelled = writer.append([b"a" * 10])
        await _started(syncs)
        cancelled.cancel()
        syncs.hold = False
        syncs.release.set()
        await writer.append([b"b" * 10])  # after the first round: file 2 is current
        files.collect(conn)
        assert files.collect(conn) == [1]  # the thread settled what nobody awaited
    finally:
        conn.close()
        await writer.stop()


async def test_a_closed_data_thread_refuses_new_data(tmp_path: Path) -> None:
    writer = DataWriter("test-data", DataFiles(tmp_path / "s.db"))
    writer.start()
    await writer.stop()
    with pytest.raises(Exception, match="closed"):
        writer.append([b"late"])
