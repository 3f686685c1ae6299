"""The checkpointer thread syncs the WAL between its checkpoints while there are commits."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from streamkit.server.store.sqlite.checkpoint import Checkpointer
from streamkit.server.store.sqlite.schema import connect


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(tmp_path / "s.db", "normal")
    conn.execute("CREATE TABLE t (x TEXT)")
    yield conn
    conn.close()


def _checkpointer(path: Path, **options: float) -> Checkpointer:
    return Checkpointer(
        "test-checkpointer",
        partial(connect, path, "normal", readonly=True),
        path.with_name(path.name + "-wal"),
        **options,
    )


def _commit(conn: sqlite3.Connection, checkpointer: Checkpointer) -> None:
    with conn:
        conn.execute("INSERT INTO t VALUES (?)", ("x" * 1000,))
    checkpointer.committed()


def _wait_for(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_the_wal_is_synced_between_checkpoints_while_commits_come(
    tmp_path: Path, writer: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fdatasync = os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    checkpointer = _checkpointer(tmp_path / "s.db", interval=10.0, flush_interval=0.01)
    checkpointer.start()
    try:
        _commit(writer, checkpointer)  # the first pass: a checkpoint, then the long rest
        for _ in range(20):
            _commit(writer, checkpointer)
            time.sleep(0.005)
        _wait_for(lambda: checkpointer.flushes >= 3)
        wal = (tmp_path / "s.db-wal").stat().st_ino
        assert synced and set(synced) == {wal}
        # No commits, no syncs.
        time.sleep(0.05)
        before = checkpointer.flushes
        time.sleep(0.1)
        assert checkpointer.flushes == before
    finally:
        checkpointer.stop()


def test_no_wal_file_is_not_an_error(tmp_path: Path) -> None:
    checkpointer = _checkpointer(tmp_path / "none.db", interval=0.05, flush_interval=0.01)
    checkpointer._flush()
    assert checkpointer.flushes == 0
