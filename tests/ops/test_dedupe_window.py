"""The dedupe window: configurable, memory set by --dedupe-max-ids whatever the traffic,
still effective across a restart."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

from streamkit.server.store.sqlite.dedupe import GENERATIONS, DedupeWindow, pack
from tests.ops.http import call
from tests.server_process import ServerProcess

T0 = 1_800_000_000_000_000  # µs
WINDOW_MS = 120_000
CAP = 50_000
FLOOD = 10 * CAP


def _ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:08d}-0b6e1c4e-8f7a-4d1e-9a55-3c2d5e6f7a8b" for i in range(count)]


def _publish(window: DedupeWindow, ids: list[str], now: int, first_seq: int) -> None:
    window.expire(now)
    staged = {
        i: pack(first_seq + n, now) for n, i in enumerate(ids) if window.find(1, i, now) is None
    }
    window.stage(1, staged)
    window.commit(now)


def test_a_full_window_forgets_its_oldest_generation_and_counts_it() -> None:
    window = DedupeWindow(WINDOW_MS, max_ids=CAP)
    generation = CAP // GENERATIONS
    first = _ids("a", CAP)
    _publish(window, first, T0, 1)
    assert len(window) == CAP and window.evicted == 0
    later = _ids("b", 1000)
    _publish(window, later, T0 + 1000, CAP + 1)
    assert window.evicted == generation  # the oldest generation, still inside its window
    assert len(window) == CAP - generation + len(later) <= CAP
    now = T0 + 2000
    assert all(window.find(1, i, now) is None for i in first[:generation])  # forgotten early
    assert all(window.find(1, i, now) is not None for i in first[generation:] + later)


def test_memory_is_set_by_max_ids_not_by_traffic() -> None:
    window = DedupeWindow(WINDOW_MS, max_ids=CAP)
    tracemalloc.start()
    try:
        now, seq, sizes = T0, 1, []
        for flood in range(FLOOD // CAP):  # ten times as many ids as it holds, all in the window
            for batch in range(CAP // 1000):
                _publish(window, _ids(f"f{flood}-{batch}", 1000), now, seq)
                now, seq = now + 1000, seq + 1000
            sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    print(" ".join(f"{size / CAP:.0f}" for size in sizes), "B per id after each fill")
    assert len(window) <= CAP and window.evicted >= FLOOD - CAP
    steady = sizes[FLOOD // CAP // 2 :]
    assert max(steady) < min(steady) * 1.1  # flat, however many more ids come
    assert max(sizes) < CAP * 300


def _publish_ids(server: ServerProcess, ids: list[str]) -> list[int]:
    body = {"messages": [{"key": "k", "data": "x", "id": i} for i in ids]}
    status, _, reply = call(server.url, "POST", "/api/streams/s/messages", body)
    assert status == 200, reply
    return [ack["seq"] for ack in reply["data"]["acks"]]


def _count(server: ServerProcess) -> Any:
    return call(server.url, "GET", "/api/streams/s")[2]["stats"]["message_count"]


def test_the_window_length_is_a_server_option(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "s.db", extra=["--dedupe-window", "1.5"])
    server.start()
    try:
        assert call(server.url, "POST", "/api/streams", {"name": "s"})[0] == 201
        assert _publish_ids(server, ["x"]) == [1]
        assert _publish_ids(server, ["x"]) == [1]  # a retry inside the window
        time.sleep(2.0)  # past the window: the same id is a new message
        assert _publish_ids(server, ["x"]) == [2]
    finally:
        assert server.stop() == 0


def test_max_ids_bounds_the_window_and_survives_a_restart(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "s.db", extra=["--dedupe-max-ids", "100"])
    server.start()
    try:
        assert call(server.url, "POST", "/api/streams", {"name": "s"})[0] == 201
        a, b = _ids("a", 100), _ids("b", 50)
        assert _publish_ids(server, a) == list(range(1, 101))
        assert _publish_ids(server, b) == list(range(101, 151))  # a[:50] forgotten
        assert _publish_ids(server, a[:10]) == list(range(151, 161))  # stored again
        assert _publish_ids(server, b) == list(range(101, 151))  # still remembered
        server.kill()
        server.start()
        # Rebuilt from the database: the newest 100 ids, a[:10], b and a[60:].
        assert _publish_ids(server, b) == list(range(101, 151))
        assert _publish_ids(server, a[60:]) == list(range(61, 101))
        assert _publish_ids(server, a[:10]) == list(range(151, 161))
        assert _count(server) == 160
    finally:
        assert server.stop() == 0


def test_bad_window_options_are_usage_errors(tmp_path: Path) -> None:
    for bad in (["--dedupe-window", "0"], ["--dedupe-max-ids", "-3"]):
        server = ServerProcess(tmp_path / "s.db", extra=bad)
        server.spawn()
        assert server.proc is not None
        assert server.proc.wait(timeout=15) == 2
        assert "must be a positive" in server.log_text()
