"""Malformed HTTP at a real server process: answered below 500, logged as one line, no traceback.

These requests never reach a route: aiohttp's parser rejects them (with its own
plain-text 400). ``streamkit serve`` logs each as a one-line warning instead of
aiohttp's ERROR with a traceback, so garbage from a client cannot flood the log
(:mod:`streamkit.server.logs`), and the server keeps serving.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.server_process import ServerProcess

MALFORMED_HTTP = [
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello
    b"GET /api/ping HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n",
    b"POST /api/streams HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
    b"POST /api/streams HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"POST /api/streams HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /api/streams HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 3\r\n\r\n0\r\n\r\n",
    b"GET /api/streams/%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/streams/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/streams/x/messages?limit=\xff HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://evil.example/api/ping HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"CONNECT x:1 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/ping HTTP/1.1\r\n" + b"H: v\r\n" * 200 + b"\r\n",
    b"GET /api/ping HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
    b"GET /api/ping HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n",
    b"\r\n\r\n\r\n",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("badhttp") / "bad.db")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` and read until the server closes or is quiet for half a second."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        sock.settimeout(0.5)
        received = b""
        for _ in range(1000):
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
        return received


@pytest.mark.parametrize("raw", MALFORMED_HTTP, ids=range(len(MALFORMED_HTTP)))
def test_malformed_http_never_5xx(
    server: ServerProcess, raw: bytes, record_property: Callable[[str, object], None]
) -> None:
    received = exchange(server.port, raw)
    head, _, body = received.partition(b"\r\n\r\n")
    if received:
        parts = head.split(b"\r\n", 1)[0].split()
        assert parts[0].startswith(b"HTTP/"), received[:200]
        status = int(parts[1])
        assert status < 500, received[:500]
        if b"application/json" in head.lower():  # it reached the app: a JSON error body
            assert status < 400 or b'"summary"' in body, received[:500]
        else:  # rejected by aiohttp's parser, before any route
            assert status == 400, received[:500]
        record_property("status", status)
    assert b"Traceback" not in received and b'File "' not in received, received[:500]
    with urllib.request.urlopen(server.url + "/health", timeout=5) as health:
        assert health.status == 200


def test_malformed_http_is_logged_as_one_line(server: ServerProcess) -> None:
    """Runs after the above: every rejection was logged, none with a traceback."""
    log = server.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert "ERROR" not in log, log[-3000:]
    assert log.count("malformed HTTP request from") >= 5, log[-3000:]


def test_log_filter_leaves_real_errors_alone(tmp_path: Path) -> None:
    import logging

    from aiohttp.http_exceptions import BadStatusLine

    from streamkit.server.logs import MalformedRequestFilter

    f = MalformedRequestFilter()
    try:
        raise BadStatusLine("HTTP/9.9")
    except BadStatusLine as exc:
        bad = logging.LogRecord(
            "aiohttp.server", logging.ERROR, "", 0, "Error handling request from %s",
            ("127.0.0.1",), (type(exc), exc, exc.__traceback__),
        )  # fmt: skip
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        real = logging.LogRecord(
            "aiohttp.server", logging.ERROR, "", 0, "Error handling request from %s",
            ("127.0.0.1",), (type(exc), exc, exc.__traceback__),
        )  # fmt: skip
    assert f.filter(bad) and f.filter(real)
    assert bad.levelno == logging.WARNING and bad.exc_info is None
    assert bad.getMessage().startswith("malformed HTTP request from 127.0.0.1")
    assert real.levelno == logging.ERROR and real.exc_info is not None
