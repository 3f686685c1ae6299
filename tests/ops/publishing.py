"""A publisher thread for tests that stop, kill or copy a server while it publishes."""

from __future__ import annotations

import threading
import time

from tests.ops.http import call
from tests.server_process import ServerProcess

BATCH = 100
MAX_BATCHES = 2000
PUBLISH_FOR = 60.0  # seconds at most; tests stop the publisher long before


class Publisher(threading.Thread):
    """Publishes batches with ids until stopped (bounded); records every acked id in order."""

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(name="test-publisher", daemon=True)
        self.server = server
        self.acked: list[str] = []
        self.stopping = threading.Event()
        self.failures: list[object] = []

    def run(self) -> None:
        deadline = time.monotonic() + PUBLISH_FOR
        for n in range(MAX_BATCHES):
            if self.stopping.is_set() or time.monotonic() > deadline:
                return
            ids = [f"{n}-{i}" for i in range(BATCH)]
            body = {"messages": [{"key": "k", "data": "y" * 200, "id": i} for i in ids]}
            try:
                status, _, reply = call(self.server.url, "POST", "/api/streams/s/messages", body)
            except OSError as exc:  # the server went away (the shutdown test stops it)
                self.failures.append(exc)
                return
            if status != 200:
                self.failures.append(reply)
                return
            self.acked += ids

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + PUBLISH_FOR
        while len(self.acked) < count:
            assert self.is_alive() and time.monotonic() < deadline, self.failures
            time.sleep(0.01)
