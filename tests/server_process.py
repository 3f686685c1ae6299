"""A real server in a subprocess (``python -m streamkit.server``) to kill, restart and measure."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

READY_TIMEOUT = 15.0


def call_json(url: str, method: str, body: Any = None, timeout: float = 30) -> Any:
    """One blocking JSON request (for tests that drive a server process by hand)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class ServerProcess:
    """One server process at a time on a fixed port and database; stderr goes to a log file.

    ``extra`` are more ``streamkit.server`` arguments (``--api-key``, ``--cert``...).
    """

    def __init__(
        self,
        db: Path,
        *,
        port: int | None = None,
        extra: list[str] | None = None,
        log: Path | None = None,
        tls: bool = False,
    ) -> None:
        self.db = db
        self.port = port or free_port()
        self.extra = list(extra or [])
        self.log = log or db.with_suffix(".log")
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def spawn(self) -> None:
        """Start the process (not waiting for it to listen)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("STREAMKIT_API_KEY", None)
        command = [sys.executable, "-m", "streamkit.server", "--port", str(self.port)]
        command += ["--db", str(self.db), "--log-level", "WARNING", *self.extra]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
            )
        self.starts += 1

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_text()}")
        context = ssl._create_unverified_context() if self.tls else None
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1, context=context) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def start(self) -> None:
        """Start and wait (blocking) until ``/health`` answers."""
        self.spawn()
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._healthy():
            if time.monotonic() > deadline:
                raise TimeoutError(f"server on {self.url} not ready after {READY_TIMEOUT}s")
            time.sleep(0.02)

    async def astart(self) -> None:
        """Start and wait until ``/health`` answers, without blocking the event loop."""
        self.spawn()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        while not await asyncio.to_thread(self._healthy):
            if loop.time() > deadline:
                raise TimeoutError(f"server on {self.url} not ready after {READY_TIMEOUT}s")
            await asyncio.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no chance to flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM and wait (SIGKILL after 10 s); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def rss_kib(self) -> int:
        """The server's resident memory now, in KiB."""
        return rss_kib(self.pid)

    def log_text(self) -> str:
        """Everything the server wrote to stderr so far."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
