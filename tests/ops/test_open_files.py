"""File descriptors: the server raises its own nofile limit, and running out never floods or wedges.

Real server processes started under a lowered ``RLIMIT_NOFILE``
(`tests.ops.limited_server`). Out of descriptors, accept fails with EMFILE:
the server logs that once per interval (not once per attempt), pauses its
listener instead of spinning, and answers again once the flood is gone.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.ops.limited_server import LimitedServerProcess
from tests.ops.open_files import need_open_files
from tests.ops.raw_http import connections, exchange, ping, request


def flood(port: int, count: int, stack: ExitStack) -> None:
    """``count`` connections that never send a byte (the kernel completes them in the backlog)."""
    for _ in range(count):
        sock = stack.enter_context(socket.socket())
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))


async def pings_answered(port: int, count: int) -> int:
    ok = 0
    for _ in range(count):
        try:
            response, _ = await exchange(port, request(), until_closed=False)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            continue
        ok += response.status == 200
    return ok


@pytest.fixture
def hard_limit() -> Iterator[int]:
    need_open_files(3000)
    yield resource.getrlimit(resource.RLIMIT_NOFILE)[1]


async def test_the_server_raises_its_soft_limit_and_serves_past_1024(
    tmp_path: Path, hard_limit: int
) -> None:
    hard = min(hard_limit, 8192)
    server = LimitedServerProcess(tmp_path / "raise.db", soft=1024, hard=hard)
    await server.astart()
    try:
        assert server.open_file_limits() == (hard, hard)
        assert f"raised the open-file limit (nofile) from 1024 to {hard}" in server.log_text()
        async with connections(server.port, 1100, ping):
            assert await pings_answered(server.port, 20) == 20
    finally:
        server.stop()


async def test_out_of_descriptors_logs_once_per_interval_and_recovers(
    tmp_path: Path, hard_limit: int
) -> None:
    server = LimitedServerProcess(
        tmp_path / "emfile.db", soft=256, hard=256, extra=["--header-timeout", "2"]
    )
    await server.astart()
    try:
        with ExitStack() as stack:
            flood(server.port, 600, stack)
            deadline = time.monotonic() + 15
            while "cannot accept connections" not in server.log_text():
                assert time.monotonic() < deadline, server.log_text()[-2000:]
                await asyncio.sleep(0.1)
            await asyncio.sleep(3)  # flooded for a while: the log must not grow with it
        log = server.log_text()
        lines = log.splitlines()
        accept_lines = [line for line in lines if "cannot accept connections" in line]
        assert 1 <= len(accept_lines) <= 2, log[-3000:]
        assert len(lines) <= 10, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        # The flood closed, the server answers again.
        for _ in range(100):
            if await pings_answered(server.port, 1):
                break
            await asyncio.sleep(0.1)
        assert await pings_answered(server.port, 5) == 5, server.log_text()[-2000:]
    finally:
        assert server.stop() == 0
