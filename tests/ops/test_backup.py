"""``streamkit backup`` of a live database, and restoring it (stop, copy into place, start)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from streamkit.server.store.base import MessageQuery, StreamOptions
from streamkit.server.store.sqlite.datafiles import FILE_DATA_CHARS, directory_of
from streamkit.server.store.sqlite.store import SqliteStore
from tests.faults.integrity import check_db
from tests.ops.http import all_messages, call
from tests.ops.publishing import Publisher
from tests.server_process import ServerProcess

CLI = [sys.executable, "-c", "import sys; from streamkit.cli import main; sys.exit(main())"]


def _backup(db: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "backup", "--db", str(db), str(out), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_backup_taken_while_publishing_restores_every_event_acked_before_it(
    tmp_path: Path,
) -> None:
    db, out = tmp_path / "live.db", tmp_path / "backup.db"
    server = ServerProcess(db)
    server.start()
    publisher = Publisher(server)
    try:
        assert call(server.url, "POST", "/api/streams", {"name": "s"})[0] == 201
        publisher.start()
        publisher.wait_for(20_000)  # a few MiB: many backup steps of 8 pages
        before = list(publisher.acked)
        done = _backup(db, out, "--pages", "8")
        during = len(publisher.acked) - len(before)
        publisher.stopping.set()
        publisher.join(timeout=60)
        assert done.returncode == 0, done.stderr
        assert "backed up" in done.stdout
        assert not publisher.failures
        assert during > 0, "nothing was published while the backup ran"
        acked = list(publisher.acked)
    finally:
        publisher.stopping.set()
        assert server.stop() == 0
    assert not (tmp_path / "backup.db.partial").exists()
    assert not Path(str(out) + "-wal").exists()
    with sqlite3.connect(out) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    # Restore: the server is stopped; its WAL and shared memory go, the copy goes in place.
    for leftover in (Path(str(db) + "-wal"), Path(str(db) + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(out, db)
    server.start()
    try:
        restored = [m["id"] for m in all_messages(server.url, "s")]
    finally:
        assert server.stop() == 0
    print(f"{len(before)} acked before the backup, {during} during it, {len(restored)} restored")
    assert set(before) <= set(restored), "an event acked before the backup began is missing"
    assert restored == acked[: len(restored)], "the copy is not one instant of the stream"


def test_backup_refuses_clearly(tmp_path: Path) -> None:
    missing = _backup(tmp_path / "none.db", tmp_path / "out.db")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"streamkit: error: {tmp_path / 'none.db'}: no such database file"
    ]
    db = tmp_path / "s.db"
    sqlite3.connect(db).close()
    itself = _backup(db, db)
    assert itself.returncode == 1 and "cannot overwrite its own database" in itself.stderr
    assert not (tmp_path / "out.db").exists()


async def test_a_backup_carries_the_data_files_its_messages_refer_to(tmp_path: Path) -> None:
    db, out = tmp_path / "live.db", tmp_path / "backup.db"
    big = [f"{i}:" + "é" * FILE_DATA_CHARS for i in range(6)]
    store = SqliteStore(db)
    await store.open()
    try:
        await store.create_stream("s", StreamOptions())
        await store.publish("s", [{"key": "k", "data": d} for d in big[:3]])
        out.write_bytes(b"an older backup")  # replaced, with whatever data files it had
        directory_of(out).mkdir()
        (directory_of(out) / "99.dat").write_bytes(b"old")
        done = await asyncio.to_thread(_backup, db, out)
        await store.publish("s", [{"key": "k", "data": d} for d in big[3:]])  # after: not in it
    finally:
        await store.close()
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "backup.db.partial").exists()
    assert not (tmp_path / "backup.db.partial-data").exists()
    assert [p.name for p in directory_of(out).iterdir()] == ["1.dat"]
    check_db(out).assert_ok()

    restored = SqliteStore(out)
    await restored.open()
    try:
        stored = await restored.read_messages("s", MessageQuery())
    finally:
        await restored.close()
    assert [m["data"] for m in stored] == big[:3]
