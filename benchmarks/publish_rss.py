"""``python -m benchmarks.publish_rss --url U --count N``: publish N events, report peak RSS.

Runs in its own process so ``ru_maxrss`` measures only the publisher. Events are
generated lazily, so what the process holds beyond the client itself is the
publisher's buffer. Prints one JSON line with the peak RSS once connected, after
a warm-up that fills the buffer, and after ``count`` more events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
import uuid
from pathlib import Path

import streamkit
from benchmarks.publish import bench_events
from streamkit import Nack

STATUS = Path("/proc/self/status")


def max_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB.

    On Linux this is ``VmHWM``: ``ru_maxrss`` there also counts the parent's pages
    when the process was spawned (exec records the forking image's high-water
    mark), which would report the benchmark runner's memory, not ours.
    """
    if STATUS.exists():
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


async def measure(url: str, count: int, warm_up: int) -> dict[str, float]:
    """Publish ``warm_up`` then ``count`` events; return RSS figures and the rate."""
    stream = f"bench-rss-{uuid.uuid4().hex[:8]}"
    nacks: list[Nack] = []
    async with streamkit.connect(url) as client:
        await client.create_stream(stream)
        connected = max_rss_mb()
        await client.publish(stream, bench_events(warm_up), on_nack=nacks.append)
        await client.flush(timeout=60)
        warm = max_rss_mb()
        started = time.perf_counter()
        await client.publish(stream, bench_events(count), on_nack=nacks.append)
        await client.flush(timeout=120)
        elapsed = time.perf_counter() - started
        peak = max_rss_mb()
        await client.delete_stream(stream)
    if nacks:
        raise RuntimeError(f"{len(nacks)} events nacked, e.g. {nacks[0]}")
    return {
        "connected_mb": connected,
        "warm_mb": warm,
        "peak_mb": peak,
        "rate": count / elapsed,
        "count": count,
    }


def main() -> None:
    """Parse arguments, measure, print the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.publish_rss")
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--warm-up", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.url, args.count, args.warm_up))))


if __name__ == "__main__":
    main()
