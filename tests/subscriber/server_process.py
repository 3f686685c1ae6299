"""A server in a child process (``python -m streamkit.server``), to SIGKILL and restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """``python -m streamkit.server --port P --db D``; `start` waits until it answers pings."""

    def __init__(self, db: Path, port: int | None = None) -> None:
        self.db = db
        self.port = port or free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 15.0) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "streamkit.server",
            "--port",
            str(self.port),
            "--db",
            str(self.db),
            "--log-level",
            "WARNING",
            stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, "STREAMKIT_API_KEY": ""},
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"{self.url}/api/ping") as response:
                        if response.status == 200:
                            return
                if loop.time() > deadline:
                    raise TimeoutError("server did not start")
                await asyncio.sleep(0.02)

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flush."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except asyncio.TimeoutError:
                await self.kill()
