"""The writer thread: FIFO, group commit, a failing job rolls back alone."""

from __future__ import annotations

import asyncio
import sqlite3
from functools import partial
from pathlib import Path

import pytest

from streamkit.server.store.base import StoreUnavailable
from streamkit.server.store.sqlite.thread import SqliteThread


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    return conn


async def test_group_commit_isolates_failures(tmp_path: Path) -> None:
    commits: list[int] = []
    writer = SqliteThread(
        "test-writer",
        partial(_connect, tmp_path / "t.db"),
        transactional=True,
        on_commit=lambda: commits.append(1),
    )
    await writer.start()
    try:
        await writer.run(lambda c: c.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)"))

        def insert(x: int, conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO t VALUES (?)", (x,))
            if x == 13:
                raise ValueError("unlucky")
            return x

        before = len(commits)
        futures = [writer.run(partial(insert, x)) for x in range(50)]
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert isinstance(results[13], ValueError)
        assert [r for i, r in enumerate(results) if i != 13] == [x for x in range(50) if x != 13]
        rows = await writer.run(lambda c: [r[0] for r in c.execute("SELECT x FROM t ORDER BY x")])
        assert rows == [x for x in range(50) if x != 13]
        assert len(commits) - before < 50  # queued jobs shared transactions
    finally:
        await writer.stop()
    with pytest.raises(StoreUnavailable):
        writer.run(lambda c: None)


async def test_startup_failure_is_raised(tmp_path: Path) -> None:
    def broken() -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    writer = SqliteThread("test-broken", broken, transactional=True)
    with pytest.raises(sqlite3.OperationalError):
        await writer.start()
    await writer.stop()
