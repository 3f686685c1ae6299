"""Disk stays bounded: the WAL shrinks back, a stream at its limit stops the file growing,
``streamkit compact`` hands freed pages back (and refuses while a server runs)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from streamkit.server.store.sqlite.schema import WAL_SIZE_LIMIT
from streamkit.testing import ServerHandle, run_server
from tests.conformance.helpers import eventually
from tests.http_api import Api
from tests.server_process import ServerProcess

from .sizes import MIB, db_size, wal_size

KIB_DATA = "x" * 1024
_CLI = "from streamkit.cli import main; raise SystemExit(main())"


async def _fill(api: Api, stream: str, count: int, data: str = KIB_DATA) -> None:
    for start in range(0, count, 1000):
        n = min(1000, count - start)
        got = await api.publish(stream, [{"key": "orders.eu", "data": data}] * n)
        assert got["published"] == n


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))


def _compact(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CLI, "compact", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_wal_shrinks_back_after_a_burst(tmp_path: Path) -> None:
    """30,000 x 1 KiB events, then idle: the WAL goes back under its bound (was 32 MiB)."""
    server = ServerProcess(tmp_path / "streamkit.db")
    await server.astart()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            api = Api(session, server.url)
            await api.stream("orders")
            await _fill(api, "orders", 30_000)
            peak = wal_size(server.db)
            settled = await eventually(
                lambda: asyncio.sleep(0, wal_size(server.db)),
                lambda size: size <= WAL_SIZE_LIMIT,
                timeout=15,
                interval=0.2,
            )
            assert settled <= WAL_SIZE_LIMIT, (peak, settled)
            # Nothing was lost by truncating.
            body = await api.ok("GET", "/api/streams/orders")
            assert body["stats"]["message_count"] == 30_000
    finally:
        server.stop()


async def test_a_stream_at_its_limit_stops_the_file_growing(api: Api, server: ServerHandle) -> None:
    """Freed pages are reused: after warm-up the file does not grow with what is published."""
    await api.stream("orders", retain_up_to=5_000)
    sizes = []
    for _ in range(16):  # 80,000 x 1 KiB published, 5,000 kept
        await _fill(api, "orders", 5_000)
        sizes.append(db_size(server.db_path))
    warm = sizes[3]
    assert max(sizes[4:]) <= warm * 1.25 + MIB, [s // 1024 for s in sizes]
    body = await api.ok("GET", "/api/streams/orders")
    assert body["stats"]["message_count"] == 5_000


async def test_compact_gives_space_back(tmp_path: Path) -> None:
    db = tmp_path / "streamkit.db"
    async with run_server(db) as server, _session() as session:
        api = Api(session, server.url)
        await api.stream("orders")
        await _fill(api, "orders", 20_000)
        await api.ok("PATCH", "/api/streams/orders", {"retain_up_to": 100})
        await eventually(
            lambda: api.ok("GET", "/api/streams/orders"),
            lambda s: s["stats"]["message_count"] == 100,
            timeout=20,
        )
        refused = await asyncio.to_thread(_compact, db)
        assert refused.returncode == 1
        assert "in use" in refused.stderr and str(db) in refused.stderr
    full = db_size(db) + wal_size(db)
    assert full > 15 * MIB
    done = await asyncio.to_thread(_compact, db)
    assert done.returncode == 0, done.stderr
    assert db_size(db) + wal_size(db) < 2 * MIB
    async with run_server(db) as server, _session() as session:
        api = Api(session, server.url)
        assert [m["seq"] for m in await api.read(limit=1000)] == list(range(19_901, 20_001))


async def test_compact_converts_an_old_file(tmp_path: Path) -> None:
    """A file without incremental auto-vacuum is rewritten once, then compacts in place."""
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [("y" * 1000,)] * 5000)
    conn.commit()
    conn.execute("DELETE FROM t")
    conn.commit()
    conn.close()
    before = db_size(db)
    done = await asyncio.to_thread(_compact, db)
    assert done.returncode == 0, done.stderr
    assert "rewrote" in done.stdout
    assert db_size(db) < before / 10


def test_compact_of_a_missing_file_fails_cleanly(tmp_path: Path) -> None:
    done = _compact(tmp_path / "nope.db")
    assert done.returncode == 1
    assert "no database" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
async def test_soak_sizes_stop_growing(api: Api, server: ServerHandle) -> None:
    """300,000 x 100 B events into a stream keeping 30,000: the file is flat after warm-up,
    the WAL stays within a few times the size at which the writer checkpoints."""
    await api.stream("orders", retain_up_to=30_000)
    files, wals = [], []
    for _ in range(10):
        await _fill(api, "orders", 30_000, data="x" * 100)
        files.append(db_size(server.db_path))
        wals.append(wal_size(server.db_path))
    warm = max(files[:3])
    assert max(files[3:]) <= warm * 1.1 + MIB, [s // 1024 for s in files]
    assert max(wals) <= 4 * WAL_SIZE_LIMIT, [s // 1024 for s in wals]
