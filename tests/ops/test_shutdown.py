"""SIGTERM: in-flight long-polls answered (empty), no new connections, what is queued
committed, exit 0 within a bound; every acked event is there after a restart."""

from __future__ import annotations

import signal
import socket
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.ops.http import all_messages, call
from tests.ops.publishing import Publisher
from tests.server_process import ServerProcess

LONG_POLL_MS = 30_000
EXIT_BOUND = 10.0  # seconds: well under the long-polls' 30 s, so they were answered early


class LongPoll(threading.Thread):
    def __init__(self, server: ServerProcess, path: str) -> None:
        super().__init__(name=f"long-poll {path}", daemon=True)
        self.server, self.path = server, path
        self.answer: tuple[int, Any] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            status, _, body = call(
                self.server.url, "GET", self.path, timeout=LONG_POLL_MS / 1000 + 10
            )
            self.answer = (status, body)
        except BaseException as exc:  # reported by the test
            self.error = exc


def _tail_open(server: ServerProcess) -> urllib.request.Request:
    return urllib.request.Request(server.url + "/api/streams/quiet/messages/sse")


def test_sigterm_drains_and_exits_zero_with_every_acked_event_kept(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "s.db")
    server.start()
    publisher = Publisher(server)
    try:
        for name in ("s", "quiet"):
            assert call(server.url, "POST", "/api/streams", {"name": name})[0] == 201
        consumer = {"name": "c", "filter_key_pattern": ">"}
        assert call(server.url, "POST", "/api/streams/quiet/consumers", consumer)[0] == 201
        polls = [
            LongPoll(server, f"/api/streams/quiet/consumers/c/receive?wait_for={LONG_POLL_MS}"),
            LongPoll(server, f"/api/streams/quiet/messages?after_seq=0&wait_for={LONG_POLL_MS}"),
        ]
        for poll in polls:
            poll.start()
        tail = urllib.request.urlopen(_tail_open(server), timeout=30)  # a live tail, idle
        publisher.start()
        publisher.wait_for(5_000)
        time.sleep(0.3)  # the long-polls are waiting by now
        assert all(poll.answer is None and poll.is_alive() for poll in polls)

        assert server.proc is not None
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=EXIT_BOUND + 20)
        took = time.monotonic() - started
        print(f"exited {code} {took:.2f}s after SIGTERM; {len(publisher.acked)} acked")
        assert code == 0, server.log_text()
        assert took < EXIT_BOUND
        for poll in polls:
            poll.join(timeout=10)
            assert poll.error is None, poll.error
            assert poll.answer == (200, {"data": []}), poll.answer
        tail.read()  # the live tail ended cleanly (EOF), not reset
        tail.close()
        with socket.socket() as probe:  # it stopped accepting
            assert probe.connect_ex(("127.0.0.1", server.port)) != 0
        publisher.stopping.set()
        publisher.join(timeout=60)
        acked = set(publisher.acked)

        server.start()
        stored = [m["id"] for m in all_messages(server.url, "s")]
        assert acked <= set(stored), f"{len(acked - set(stored))} acked events lost"
        assert len(stored) == len(set(stored))
    finally:
        publisher.stopping.set()
        server.stop()


def test_sigterm_while_the_store_opens_still_exits_zero(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    server = ServerProcess(db)
    server.start()  # create the database
    assert server.stop() == 0
    # Hold SQLite's write lock: the next server's store waits in its open (busy timeout).
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        server.spawn()
        assert server.proc is not None
        lock = tmp_path / "s.db.lock"
        deadline = time.monotonic() + 15
        while lock.read_text().strip() != str(server.proc.pid):  # it is opening the store
            assert time.monotonic() < deadline and server.proc.poll() is None
            time.sleep(0.005)
        time.sleep(0.2)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert server.proc.wait(timeout=30) == 0, server.log_text()
