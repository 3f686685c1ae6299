"""The consume scenario: how fast a subscription hands out and acks events, and how soon.

- streamkit, one subscription: events/s handed out by ``async for`` and acked
  with ``await event.ack()``, until the last ack reached the server (the
  subscription is closed inside the clock). The events are stored first.
- streamkit, the batch API: the same, by ``async for batch in
  subscription.batches()`` and ``await batch.ack()``.
- nats-py JetStream: a durable pull consumer, ``fetch(batch)`` then
  ``await msg.ack()`` for each, over a file-backed stream, same count and size.
- streamkit, 4 competing processes on one consumer: from "go" until the server
  counts nothing pending and nothing in flight.
- latency: one event per millisecond published with ``client.send`` (one request
  each) while a subscription long-polls; publish (before the request) to the
  moment ``async for`` yields it, p50 and p99.

``python -m benchmarks.consume`` runs this scenario alone (it starts its own
servers); ``python -m benchmarks.consume --worker ...`` is the competing process.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import streamkit
from benchmarks import redis_streams
from benchmarks.harness import Context, Measurement, interleaved, print_table, servers, steady
from streamkit import Event

SCENARIO = "consume"
PAYLOAD = "x" * 100
KEYS = 16
RUNS = 2
"""Each rate is the best of this many runs."""
BATCH = 1000
WORKERS = 4
LATENCY_RATE = 1000
"""Events per second published in the latency run."""
WORKER_TIMEOUT = 120.0


def m(name: str, value: float, unit: str, note: str = "") -> Measurement:
    """A measurement of this scenario."""
    return Measurement(SCENARIO, name, value, unit, note)


@dataclass(frozen=True)
class Rate:
    """Events per second, and the consuming process's CPU time per event."""

    per_second: float
    cpu_us: float

    @classmethod
    def since(cls, count: int, wall: float, cpu: float) -> Rate:
        """The rate of ``count`` events since ``wall`` (perf_counter) and ``cpu`` (process_time)."""
        return cls(count / (time.perf_counter() - wall), (time.process_time() - cpu) / count * 1e6)


async def redis_consume_rate(url: str, count: int) -> Rate:
    """`redis_streams.consume_rate` of ``count`` 100-byte events, as a `Rate`."""
    per_second, cpu_us = await redis_streams.consume_rate(url, count, PAYLOAD.encode())
    return Rate(per_second, cpu_us)


async def fill(client: streamkit.AsyncClient, stream: str, count: int) -> None:
    """Store ``count`` 100-byte events, a few requests of 1000 in flight at a time."""
    names = [f"{stream}.k{i}" for i in range(KEYS)]

    async def send(first: int) -> None:
        last = min(first + 1000, count)
        await client.send(stream, [Event(PAYLOAD, key=names[i % KEYS]) for i in range(first, last)])

    starts = list(range(0, count, 1000))
    for i in range(0, len(starts), 8):
        await asyncio.gather(*(send(first) for first in starts[i : i + 8]))


async def new_stream(client: streamkit.AsyncClient, count: int) -> str:
    """A fresh stream holding ``count`` events, with a consumer ``bench`` over all of them."""
    stream = f"bench-{uuid.uuid4().hex[:8]}"
    await client.create_stream(stream)
    await fill(client, stream, count)
    await client.create_consumer(stream, "bench", start="all", max_ack_pending=100_000)
    return stream


async def drop_drained(client: streamkit.AsyncClient, stream: str) -> None:
    """Delete the bench stream, after checking its consumer acked every event."""
    left = await client.get_consumer(stream, "bench")
    await client.delete_stream(stream)
    if (left.pending, left.in_flight) != (0, 0):
        raise RuntimeError(f"streamkit: {left.pending} pending, {left.in_flight} in flight")


# -- one subscription --------------------------------------------------------------------


async def streamkit_rate(url: str, count: int) -> Rate:
    """Events/s handed out and acked by one subscription."""
    async with streamkit.connect(url) as client:
        stream = await new_stream(client, count)
        received = 0
        wall, cpu = time.perf_counter(), time.process_time()
        async with client.subscribe(stream, consumer="bench", batch_size=BATCH) as sub:
            async for event in sub:
                await event.ack()
                received += 1
                if received == count:
                    break
        rate = Rate.since(count, wall, cpu)
        await drop_drained(client, stream)
    return rate


async def streamkit_batch_rate(url: str, count: int) -> Rate:
    """Events/s handed out by ``subscription.batches()`` and acked with ``batch.ack()``."""
    async with streamkit.connect(url) as client:
        stream = await new_stream(client, count)
        received = 0
        wall, cpu = time.perf_counter(), time.process_time()
        async with client.subscribe(stream, consumer="bench", batch_size=BATCH) as sub:
            async for batch in sub.batches():
                await batch.ack()
                received += len(batch)
                if received == count:
                    break
        rate = Rate.since(count, wall, cpu)
        await drop_drained(client, stream)
    return rate


async def nats_rate(url: str, count: int) -> Rate:
    """Events/s with a nats-py JetStream pull consumer: ``fetch`` + ``ack`` each message."""
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        stream = f"bench{uuid.uuid4().hex[:8]}"
        await js.add_stream(name=stream, subjects=[f"{stream}.>"])
        subjects = [f"{stream}.k{i}" for i in range(KEYS)]
        payload = PAYLOAD.encode()
        for i in range(count):
            await js.publish_async(subjects[i % KEYS], payload)
        await asyncio.wait_for(js.publish_async_completed(), 120)
        psub = await js.pull_subscribe(f"{stream}.>", durable="bench", stream=stream)
        received = 0
        wall, cpu = time.perf_counter(), time.process_time()
        while received < count:
            for msg in await psub.fetch(BATCH, timeout=5):
                await msg.ack()
                received += 1
        # Acks are fire-and-forget publishes: the clock runs until the server applied them
        # all, as streamkit's does until its last ack request was answered.
        await nc.flush()
        for _ in range(1000):
            info = await js.consumer_info(stream, "bench")
            if not info.num_ack_pending:
                break
            await asyncio.sleep(0.005)
        rate = Rate.since(count, wall, cpu)
        await js.delete_stream(stream)
    finally:
        await nc.close()
    if info.num_pending or info.num_ack_pending:
        raise RuntimeError(f"nats: {info.num_pending} pending, {info.num_ack_pending} unacked")
    return rate


# -- competing processes -----------------------------------------------------------------


async def worker(url: str, stream: str, consumer: str) -> None:
    """A competing consumer process: "ready", wait for "go", consume until "stop"."""
    loop = asyncio.get_running_loop()
    async with streamkit.connect(url) as client:
        await client.ping()
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        handled = 0

        async def consume() -> None:
            nonlocal handled
            async for event in sub:
                await event.ack()
                handled += 1

        async with client.subscribe(stream, consumer=consumer, batch_size=BATCH) as sub:
            task = asyncio.create_task(consume(), name="bench-consume")
            await loop.run_in_executor(None, sys.stdin.readline)
        await task
    print(json.dumps({"handled": handled}), flush=True)


async def competing_rate(url: str, count: int, workers: int = WORKERS) -> tuple[float, list[int]]:
    """Events/s acked by ``workers`` processes sharing one consumer, and each one's share."""
    async with streamkit.connect(url) as client:
        stream = await new_stream(client, count)
        command = [sys.executable, "-m", "benchmarks.consume", "--worker", "--url", url]
        command += ["--stream", stream, "--consumer", "bench"]
        procs = [
            await asyncio.create_subprocess_exec(
                *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            for _ in range(workers)
        ]
        try:
            for proc in procs:
                assert proc.stdout is not None
                line = await asyncio.wait_for(proc.stdout.readline(), 30)
                if line.strip() != b"ready":
                    raise RuntimeError(f"worker said {line!r}")
            started = time.perf_counter()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WORKER_TIMEOUT
            while True:
                left = await client.get_consumer(stream, "bench")
                if left.pending == 0 and left.in_flight == 0:
                    break
                if loop.time() > deadline:
                    raise TimeoutError(f"{left.pending} pending, {left.in_flight} in flight")
                await asyncio.sleep(0.005)
            elapsed = time.perf_counter() - started
            shares = []
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"stop\n")
                await proc.stdin.drain()
                out, _ = await asyncio.wait_for(proc.communicate(), 30)
                shares.append(int(json.loads(out.decode().splitlines()[-1])["handled"]))
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        await client.delete_stream(stream)
    if sum(shares) != count:
        raise RuntimeError(f"competing: {sum(shares)} handled of {count}")
    return count / elapsed, shares


# -- latency -----------------------------------------------------------------------------


async def latencies(url: str, seconds: float, rate: int = LATENCY_RATE) -> list[float]:
    """Publish-to-deliver latencies (ms) at a steady ``rate`` events/s for ``seconds``."""
    async with streamkit.connect(url) as client:
        stream = f"bench-{uuid.uuid4().hex[:8]}"
        await client.create_stream(stream)
        total = int(seconds * rate)
        sent_at: dict[str, float] = {}
        measured: list[float] = []
        async with client.subscribe(stream, wait_for=5.0) as sub:

            async def consume() -> None:
                async for event in sub:
                    measured.append((time.perf_counter() - sent_at.pop(event.id)) * 1000)
                    await event.ack()
                    if len(measured) == total:
                        return

            async def send(i: int) -> None:
                event = Event(PAYLOAD, key=f"{stream}.k{i % KEYS}")
                sent_at[event.id] = time.perf_counter()
                await client.send(stream, [event])

            consumer = asyncio.create_task(consume(), name="bench-latency-consume")
            await steady(total, rate, send)
            await asyncio.wait_for(consumer, 30)
        await client.delete_stream(stream)
    return measured


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def peer_rows(
    system: str, versus: str, rates: dict[str, Rate], name: str, note: str
) -> list[Measurement]:
    """A peer's rows (``rates[name]``) with streamkit's ratios to it; one row saying it
    was skipped when its server is not installed."""
    peer = rates.get(name)
    if peer is None:
        return [m(system, math.nan, "events/s", f"skipped: no {name} server installed")]
    ours, batched = rates["ours"], rates["batched"]
    return [
        m(system, peer.per_second, "events/s", note),
        m("  client CPU per event", peer.cpu_us, "us", "the consuming process only"),
        m(f"streamkit / {versus}", ours.per_second / peer.per_second, "x"),
        m(f"streamkit batches() / {versus}", batched.per_second / peer.per_second, "x"),
    ]


async def run(ctx: Context) -> list[Measurement]:
    """Measure one subscription, its JetStream peer, competing processes and latency."""
    count = ctx.size(200_000, 50_000)
    seconds = ctx.size(5, 2)
    url = ctx.streamkit_url
    nats_url, redis_url = ctx.nats_url, ctx.redis_url
    measures: dict[str, Callable[[], Awaitable[Rate]]] = {
        "ours": functools.partial(streamkit_rate, url, count),
        "batched": functools.partial(streamkit_batch_rate, url, count),
    }
    if nats_url is not None:
        measures["nats"] = functools.partial(nats_rate, nats_url, count)
    if redis_url is not None:
        measures["redis"] = functools.partial(redis_consume_rate, redis_url, count)
    rates = await interleaved(RUNS, measures, lambda rate: rate.per_second)
    ours, batched = rates["ours"], rates["batched"]
    note = f"{count:,} events, batch {BATCH}, best of {RUNS}, interleaved"
    rows = [
        m("streamkit subscription, consume+ack", ours.per_second, "events/s", note),
        m("  client CPU per event", ours.cpu_us, "us", "the consuming process only"),
        m("streamkit batches(), batch.ack()", batched.per_second, "events/s", note),
        m("  client CPU per event", batched.cpu_us, "us", "the consuming process only"),
    ]
    rows += peer_rows("nats-py JetStream fetch+ack", "nats JetStream", rates, "nats", note)
    rows += peer_rows("redis-py XREADGROUP+XACK", "redis XREADGROUP", rates, "redis", note)
    competing, shares = await competing_rate(url, count)
    rows.append(
        m(
            f"streamkit, {WORKERS} competing processes",
            competing,
            "events/s",
            "shares " + "/".join(f"{s:,}" for s in shares),
        )
    )
    lat = await latencies(url, seconds)
    note = f"{len(lat):,} events at {LATENCY_RATE}/s, send() -> async for"
    rows += [
        m("publish->deliver p50", statistics.median(lat), "ms", note),
        m("publish->deliver p99", percentile(lat, 99), "ms", note),
    ]
    return rows


async def standalone(quick: bool) -> None:
    """Start the servers and run this scenario alone."""
    async with servers(quick) as ctx:
        rows = await run(ctx)
    print_table(rows)


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.consume [--quick]``, or a competing worker with ``--worker``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.consume", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--stream", help=argparse.SUPPRESS)
    parser.add_argument("--consumer", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        asyncio.run(worker(args.url, args.stream, args.consumer))
    else:
        asyncio.run(standalone(args.quick))


if __name__ == "__main__":
    main()
