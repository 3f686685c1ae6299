"""``python -m benchmarks.dedupe_rss [--count N] [-- serve options]``: the server's RSS growth
while publishing N events with ids (every streamkit event has one), all inside the dedupe window.

Starts its own server subprocess (``python -m streamkit.server``) on a free loopback
port and a scratch database, so the figure is the server's alone: ``VmRSS`` after
the stream is created, the peak sampled every 0.2 s while publishing, and at the
end. Options after ``--`` go to the server (``--dedupe-max-ids 200000``, say).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import streamkit
from benchmarks.harness import Process, _wait_for_http, free_port
from benchmarks.publish import bench_events
from streamkit import Nack

SAMPLE_EVERY = 0.2
FLUSH_TIMEOUT = 600.0


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` now, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def _sample(pid: int, peak: list[float]) -> None:
    while True:
        peak[0] = max(peak[0], rss_mib(pid))
        await asyncio.sleep(SAMPLE_EVERY)


async def measure(count: int, serve_options: list[str]) -> dict[str, object]:
    """Publish ``count`` events with ids to a fresh server; its RSS before, peak and after."""
    with tempfile.TemporaryDirectory(prefix="streamkit-dedupe-") as scratch:
        port = free_port()
        command = [sys.executable, "-m", "streamkit.server", "--port", str(port)]
        command += ["--db", str(Path(scratch) / "s.db"), "--log-level", "WARNING"]
        started = await asyncio.create_subprocess_exec(*command, *serve_options)
        server = Process(started, f"http://127.0.0.1:{port}")
        try:
            await _wait_for_http(server, "/api/ping")
            pid = started.pid
            stream = f"dedupe-{uuid.uuid4().hex[:8]}"
            nacks: list[Nack] = []
            async with streamkit.connect(server.url) as client:
                await client.create_stream(stream)
                before = rss_mib(pid)
                peak = [before]
                sampler = asyncio.create_task(_sample(pid, peak), name="rss-sampler")
                t0 = time.perf_counter()
                try:
                    await client.publish(stream, bench_events(count), on_nack=nacks.append)
                    await client.flush(timeout=FLUSH_TIMEOUT)
                finally:
                    sampler.cancel()
                elapsed = time.perf_counter() - t0
                after = rss_mib(pid)
                stored = (await client.get_stream(stream)).message_count
        finally:
            await server.stop()
    if nacks or stored != count:
        raise RuntimeError(f"{len(nacks)} nacked, {stored}/{count} stored")
    return {
        "count": count,
        "serve_options": serve_options,
        "rate": round(count / elapsed),
        "rss_before_mib": round(before, 1),
        "rss_peak_mib": round(peak[0], 1),
        "rss_after_mib": round(after, 1),
        "growth_mib": round(max(peak[0], after) - before, 1),
    }


def main() -> None:
    """Parse arguments, measure, print the JSON line."""
    argv = sys.argv[1:]
    serve_options: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, serve_options = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dedupe_rss")
    parser.add_argument("--count", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(measure(args.count, serve_options))))


if __name__ == "__main__":
    main()
