"""Competing workers: several subscriptions on one durable consumer share the work.

Each event goes to one worker; an event a worker does not ack (it crashed, or
it was cancelled) is handed to another. Here the workers are tasks of one
process; in production each would be its own process running ``worker()``. ::

    STREAMKIT_URL=http://localhost:7376 python examples/competing_workers.py
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter

import streamkit
from streamkit import AsyncClient, Event

STREAM = "jobs"
CONSUMER = "workers"


async def worker(
    client: AsyncClient,
    name: str,
    run: str,
    done: Counter[str],
    total: int,
    finished: asyncio.Event,
) -> None:
    """Handle jobs until cancelled: do the work, then ack."""
    # Small batches, one prefetched: a busy worker does not hoard jobs others could take.
    async with client.subscribe(STREAM, consumer=CONSUMER, batch_size=5, prefetch=1) as jobs:
        async for event in jobs:
            job = event.json()
            if job.get("run") == run:  # jobs of earlier runs are just acked
                await asyncio.sleep(0.01)  # the work
                done[name] += 1
            await event.ack()
            if sum(done.values()) >= total:
                finished.set()


async def main(url: str, jobs: int = 60, workers: int = 3) -> Counter[str]:
    """Queue ``jobs`` jobs, let ``workers`` workers share them; return jobs done per worker."""
    run = uuid.uuid4().hex
    done: Counter[str] = Counter()
    finished = asyncio.Event()
    async with streamkit.connect(url) as client:
        await client.create_stream(STREAM, exist_ok=True)
        await client.create_consumer(STREAM, CONSUMER, exist_ok=True)
        await client.publish(STREAM, [Event({"run": run, "job": i}) for i in range(jobs)])
        await client.flush()

        tasks = [
            asyncio.create_task(
                worker(client, f"worker-{n}", run, done, jobs, finished), name=f"worker-{n}"
            )
            for n in range(1, workers + 1)
        ]
        try:
            await asyncio.wait_for(finished.wait(), timeout=60)
        finally:
            for task in tasks:  # closing a subscription hands back what it held, unacked
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    for name, count in sorted(done.items()):
        print(f"{name} did {count} jobs")
    return done


if __name__ == "__main__":
    asyncio.run(main(os.environ.get("STREAMKIT_URL", "http://localhost:7376")))
