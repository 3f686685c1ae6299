"""``python -m benchmarks.large_traffic --url U --rate R --seconds S``: large events beside.

A process of its own that publishes events of `SIZE` bytes to a stream of its own
at ``rate`` events/s for ``seconds`` (bounded), so that another measurement (the
publish scenario's latency run) sees a server that also stores large data. Prints
``ready`` once connected and waits for a line on stdin before it starts; at the
end, one JSON line with what it published.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid

import streamkit
from streamkit import Event, Nack

SIZE = 64 * 1024
BATCH = 20
"""Events handed to one ``publish()`` call."""


async def publish_steadily(url: str, rate: int, seconds: float) -> dict[str, float]:
    """Publish `SIZE`-byte events at ``rate``/s for ``seconds``; all acked, then deleted."""
    stream = f"bench-large-{uuid.uuid4().hex[:8]}"
    nacks: list[Nack] = []
    loop = asyncio.get_running_loop()
    async with streamkit.connect(url) as client:
        await client.create_stream(stream)
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        payload, sent = "x" * SIZE, 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            ahead = sent / rate - elapsed
            if ahead > 0:
                await asyncio.sleep(ahead)
                continue
            events = [Event(payload, key=f"large.k{sent + i}") for i in range(BATCH)]
            await client.publish(stream, events, on_nack=nacks.append)
            sent += BATCH
        await client.flush(timeout=60)
        elapsed = time.perf_counter() - started
        await client.delete_stream(stream)
    if nacks:
        raise RuntimeError(f"large traffic: {len(nacks)} nacked")
    return {"published": sent, "rate": sent / elapsed}


def main() -> None:
    """Entry point of the background process."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    report = asyncio.run(publish_steadily(args.url, args.rate, args.seconds))
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
