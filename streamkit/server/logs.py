"""Logging for ``streamkit serve``: malformed HTTP is the client's fault, not a server error.

aiohttp logs every request its parser rejects (a bad request line, a header
too long, a TLS hello on the plain port...) as ``ERROR`` with a full traceback,
before any route runs; a client sending garbage could flood the log with them.
`MalformedRequestFilter` turns those records into one ``WARNING`` line.
Real errors (5xx, unhandled exceptions) are left alone.
"""

from __future__ import annotations

import logging
import time

from aiohttp.http_exceptions import HttpProcessingError

AIOHTTP_SERVER_LOGGER = "aiohttp.server"


class MalformedRequestFilter(logging.Filter):
    """Rewrites aiohttp's record of a rejected malformed request as a one-line warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 400) < 500:
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "malformed HTTP request from %s: %s"
            record.args = (remote, (exc.message or type(exc).__name__).splitlines()[0])
            record.exc_info = record.exc_text = None
        return True


def quiet_malformed_requests() -> None:
    """Install `MalformedRequestFilter` on aiohttp's server logger (idempotent)."""
    logger = logging.getLogger(AIOHTTP_SERVER_LOGGER)
    if not any(isinstance(f, MalformedRequestFilter) for f in logger.filters):
        logger.addFilter(MalformedRequestFilter())


class ThrottledLog:
    """Logs a recurring event at most once per ``interval`` seconds, with how often it happened.

    For events a client can cause at any rate (a refused connection, a failed
    accept): the first is logged at once, the rest of the interval are counted
    and the count is appended to the next line logged.
    """

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self.logger = logger
        self.interval = interval
        self.count = 0
        """Events since the start."""
        self._unlogged = 0
        self._last: float | None = None

    def warning(self, msg: str, *args: object) -> None:
        """Record one event; log ``msg % args`` if the last line is over ``interval`` old."""
        self.count += 1
        now = time.monotonic()
        if self._last is not None and now - self._last < self.interval:
            self._unlogged += 1
            return
        if self._unlogged:
            msg += " (and %d more like it in the last %.0fs)"
            args = (*args, self._unlogged, now - self._last if self._last is not None else 0.0)
        self.logger.warning(msg, *args)
        self._last = now
        self._unlogged = 0
