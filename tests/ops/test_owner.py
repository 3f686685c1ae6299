"""One server per database: a second refuses to start; a killed owner never blocks a restart."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.server_process import ServerProcess


def _create_stream(server: ServerProcess, name: str) -> int:
    request = urllib.request.Request(
        server.url + "/api/streams",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def _stream_names(server: ServerProcess) -> list[str]:
    with urllib.request.urlopen(server.url + "/api/streams", timeout=10) as response:
        return [s["name"] for s in json.load(response)["data"]]


def test_a_second_server_on_one_database_refuses_to_start(tmp_path: Path) -> None:
    db = tmp_path / "one.db"
    first = ServerProcess(db, log=tmp_path / "first.log")
    second = ServerProcess(db, log=tmp_path / "second.log")
    first.start()
    try:
        assert _create_stream(first, "orders") == 201
        second.spawn()
        assert second.proc is not None
        assert second.proc.wait(timeout=15) == 1
        lines = [line for line in second.log_text().splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert str(db) in lines[0] and f"pid {first.pid}" in lines[0], lines[0]
        # The refused server changed nothing; the owner still serves.
        assert _stream_names(first) == ["orders"]
    finally:
        first.stop()
        second.stop()


def test_a_killed_owner_never_blocks_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "one.db"
    first = ServerProcess(db, log=tmp_path / "first.log")
    first.start()
    assert _create_stream(first, "orders") == 201
    first.kill()  # SIGKILL: the lock file stays, the lock dies with the process
    assert (tmp_path / "one.db.lock").exists()
    again = ServerProcess(db, log=tmp_path / "again.log")
    again.start()
    try:
        assert _stream_names(again) == ["orders"]
        assert (tmp_path / "one.db.lock").read_text().strip() == str(again.pid)
    finally:
        assert again.stop() == 0
