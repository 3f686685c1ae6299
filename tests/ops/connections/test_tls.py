"""The connection limits hold over TLS too: a stalled handshake is closed, the cap answers 503."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from streamkit.server.runner import tls_context
from streamkit.testing import run_server
from tests.faults.test_security import _self_signed
from tests.ops.raw_http import CLOSE_MARGIN, EXCHANGE_TIMEOUT, eof, port_of, read_response, request


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return _self_signed(tmp_path)


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


async def test_a_stalled_tls_handshake_is_closed_after_the_header_timeout(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    context = tls_context(str(cert), str(key))
    async with run_server(ssl_context=context, header_timeout=1.0) as server:
        opened = [
            await asyncio.open_connection("127.0.0.1", port_of(server)) for _ in range(20)
        ]  # plain TCP: no ClientHello ever comes
        try:
            closed = await asyncio.gather(*(eof(r, 1.0 + CLOSE_MARGIN) for r, _ in opened))
            assert closed == [b""] * 20
        finally:
            for _, writer in opened:
                writer.close()


async def test_past_the_cap_a_tls_connection_gets_503(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = tls_context(str(cert), str(key))
    async with run_server(ssl_context=context, max_connections=2) as server:
        port = port_of(server)
        held = []
        try:
            for expected in (200, 200, 503):
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port, ssl=trusting(cert)),
                    EXCHANGE_TIMEOUT,
                )
                held.append(writer)
                writer.write(request())
                response = await read_response(reader)
                assert response.status == expected, response
            assert response.json()["code"] == "too_many_connections"
            assert await eof(reader, 1.0 + CLOSE_MARGIN) == b""
        finally:
            for writer in held:
                writer.close()
