"""A real server in a subprocess (``python -m streamkit.server``), for tests that kill it."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import aiohttp

READY_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """Starts, kills (SIGKILL) and restarts a server on one port and database file."""

    def __init__(self, db: Path, port: int | None = None) -> None:
        self.db = db
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the server and wait until it answers a ping."""
        command = [sys.executable, "-m", "streamkit.server", "--port", str(self.port)]
        command += ["--db", str(self.db), "--log-level", "WARNING"]
        self._process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL
        )
        await self._wait_ready()

    async def kill(self) -> None:
        """SIGKILL the server and reap it."""
        if self._process is not None:
            self._process.kill()
            await asyncio.wait_for(self._process.wait(), 10)
            self._process = None

    async def stop(self) -> None:
        """Terminate the server if it runs (test teardown)."""
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except asyncio.TimeoutError:
                await self.kill()
        self._process = None

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while loop.time() < deadline:
                if self._process is not None and self._process.returncode is not None:
                    raise RuntimeError(f"server exited with {self._process.returncode}")
                try:
                    async with http.get(f"{self.url}/api/ping") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise TimeoutError(f"server on {self.url} not ready after {READY_TIMEOUT}s")
