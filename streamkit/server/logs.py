"""Logging for ``streamkit serve``: malformed HTTP is the client's fault, not a server error.

aiohttp logs every request its parser rejects (a bad request line, a header
too long, a TLS hello on the plain port...) as ``ERROR`` with a full traceback,
before any route runs; a client sending garbage could flood the log with them.
`MalformedRequestFilter` turns those records into one ``WARNING`` line.
Real errors (5xx, unhandled exceptions) are left alone.
"""

from __future__ import annotations

import logging

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
