"""What the fuzz tests drive: an in-process server on its own thread and a raw HTTP client.

The server runs in a background thread with its own event loop, so the
(synchronous) hypothesis tests can send requests one at a time and read the
server's log records as they happen. The client is `http.client`: it sends any
method, path, headers and body bytes as given.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamkit.server.logs import quiet_malformed_requests
from streamkit.testing import ServerHandle, run_server


class _Capture(logging.Handler):
    """Keeps every record at ERROR or above from the server's side of the process."""

    PREFIXES = ("streamkit", "aiohttp", "asyncio")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(self.PREFIXES):
            self.records.append(record)


class ThreadedServer:
    """``run_server(db, **options)`` on a thread; ``with ThreadedServer(...) as s: s.url``."""

    def __init__(self, db: Path, **options: Any) -> None:
        self.db = db
        self.options = options
        self.url = ""
        self.handle: ServerHandle | None = None
        self.errors = _Capture()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="fuzz-server", daemon=True)

    def __enter__(self) -> ThreadedServer:
        quiet_malformed_requests()  # as `streamkit serve` does
        logging.getLogger().addHandler(self.errors)
        self._thread.start()
        if not self._ready.wait(15) or self._failure is not None:
            raise RuntimeError(f"server did not start: {self._failure!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        logging.getLogger().removeHandler(self.errors)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by __enter__
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with run_server(self.db, **self.options) as handle:
            self.handle = handle
            self.url = handle.url
            self._ready.set()
            await self._stop.wait()


@dataclass
class Reply:
    """A response as received."""

    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class RawHttp:
    """One keep-alive connection; sends exactly the method, target, headers and body given."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def send(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: Mapping[str, str | bytes] | None = None,
    ) -> Reply:
        """One request; a reset or a closed keep-alive connection is retried once, fresh."""
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, target, body=body, headers=headers or {})
                response = self._conn.getresponse()
                content_type = response.getheader("Content-Type", "") or ""
                if content_type.startswith("text/event-stream"):
                    # A live tail never ends: take the head, then hang up.
                    data = b""
                    self.close()
                else:
                    data = response.read()
                    if response.will_close:
                        self.close()
                return Reply(
                    response.status,
                    content_type.split(";")[0].strip(),
                    data,
                    {k.lower(): v for k, v in response.getheaders()},
                )
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.close()
                if attempt:
                    raise
            except BaseException:
                self.close()  # never leave the connection half-way through a request
                raise
        raise AssertionError("unreachable")
