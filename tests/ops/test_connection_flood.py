"""2,000 idle and 200 slowloris connections at a real server process: pings keep answering.

The idle connections each made one request and sit on keep-alive; the
slowloris ones sent half a request line and stall. Pings, each on a new
connection, must all be answered while both are open (their latency is
recorded, never asserted); the slowloris ones are answered 408 and closed
after the header timeout, while the idle ones, within their idle timeout,
are left alone.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.ops.open_files import need_open_files
from tests.ops.raw_http import (
    CLOSE_MARGIN,
    EXCHANGE_TIMEOUT,
    connections,
    eof,
    exchange,
    half_a_request_line,
    ping,
    request,
)
from tests.server_process import ServerProcess

IDLE = 2000
SLOWLORIS = 200
PINGS = 200
HEADER_TIMEOUT = 3.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    need_open_files(2 * (IDLE + SLOWLORIS + PINGS) + 200)  # both ends live in this test
    process = ServerProcess(
        tmp_path / "flood.db",
        extra=["--header-timeout", str(HEADER_TIMEOUT), "--idle-timeout", "300"],
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def test_pings_answer_through_idle_and_slowloris_floods(
    server: ServerProcess, record_property: Callable[[str, object], None]
) -> None:
    async with (
        connections(server.port, IDLE, ping) as idle,
        connections(server.port, SLOWLORIS, half_a_request_line) as slow,
    ):
        latencies = []
        for _ in range(PINGS):
            start = time.perf_counter()
            response, _ = await exchange(server.port, request(), until_closed=False)
            latencies.append(time.perf_counter() - start)
            assert response.status == 200, response
        answers = await asyncio.gather(
            *(eof(reader, HEADER_TIMEOUT + CLOSE_MARGIN) for reader, _ in slow)
        )
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[:3]
        assert not any(reader.at_eof() for reader, _ in idle)
        for conn in idle[:: IDLE // 20]:  # and they still serve
            await asyncio.wait_for(ping(conn), EXCHANGE_TIMEOUT)
    cuts = statistics.quantiles(latencies, n=100)
    figures = {
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "max_ms": max(latencies) * 1000,
    }
    for name, value in figures.items():
        record_property(name, round(value, 2))
    print(f"ping latency with {IDLE} idle + {SLOWLORIS} slowloris connections: {figures}")
    assert "Traceback" not in server.log_text()
