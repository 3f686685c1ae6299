"""The publish scenario: acked, durable events per second for 100-byte events.

- streamkit: the background publisher (batches, several in flight), then ``flush()``;
  the clock includes building the `Event`s, as an application would.
- sequin-py: the plain Sequin client, one message per synchronous request.
- the bare pipeline (`benchmarks.bare`): aiohttp, orjson and SQLite with none of
  streamkit's own work, in a process of its own: the floor under streamkit's figure.
- nats-py: JetStream ``publish_async`` to a file-backed stream, then
  ``publish_async_completed()`` (every publish acked by the server).
- redis-py: pipelines of XADD, 4 in flight (see `benchmarks.redis_streams`);
  skipped when ``redis-server`` is not installed.
- latency: one event per millisecond, from ``publish`` to its ack (streamkit's
  ``on_ack``, JetStream's PubAck, the XADD reply), p50 and p99. streamkit's once
  more beside `LARGE_RATE` events/s of 64 KB published to another stream by another
  process (`benchmarks.large_traffic`): small events should not wait on large ones.
- peak RSS of a separate process publishing 1M events (200k with ``--quick``):
  the buffer bounds memory, so the peak should not grow with the count.

Events carry one of 16 keys (subjects for NATS); streamkit keeps per-key order.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import streamkit
from benchmarks import bare, redis_streams
from benchmarks.harness import Context, Measurement, interleaved, percentile, steady
from streamkit import Event, Nack, PublisherConfig

SCENARIO = "publish"
PAYLOAD = "x" * 100
KEYS = 16
RSS_TIMEOUT = 150.0
RUNS = 3
"""Each rate is the best of this many runs."""
WARM_UP = 20_000
"""Events the RSS process publishes first: more than the default buffer holds."""
LATENCY_RATE = 1000
"""Events per second published in the latency runs."""
LARGE_RATE = 1500
"""64 KB events per second beside the second latency run (about 100 MB/s)."""
LARGE_TIMEOUT = 60.0


def bench_events(count: int, keys: int = KEYS, payload: str = PAYLOAD) -> Iterator[Event]:
    """``count`` events over ``keys`` keys (no key at all when ``keys`` is 0)."""
    names = [f"bench.k{i}" for i in range(keys)]
    for i in range(count):
        yield Event(payload, key=names[i % keys] if keys else None)


async def streamkit_rate(
    url: str,
    count: int,
    keys: int = KEYS,
    *,
    payload: str = PAYLOAD,
    config: PublisherConfig | None = None,
) -> float:
    """Events/s through `AsyncClient.publish` + `flush`, all acked."""
    stream = f"bench-{uuid.uuid4().hex[:8]}"
    nacks: list[Nack] = []
    async with streamkit.connect(url, publisher=config) as client:
        await client.create_stream(stream)
        started = time.perf_counter()
        await client.publish(stream, bench_events(count, keys, payload), on_nack=nacks.append)
        await client.flush(timeout=120)
        elapsed = time.perf_counter() - started
        stored = (await client.get_stream(stream)).message_count
        await client.delete_stream(stream)
    if nacks or stored != count:
        raise RuntimeError(f"streamkit: {len(nacks)} nacked, {stored}/{count} stored")
    return count / elapsed


def sequin_rate(url: str, count: int) -> float:
    """Events/s with sequin-py, one message per (synchronous) request."""
    from sequin.client import Client

    client = Client(base_url=url)
    stream = f"bench-{uuid.uuid4().hex[:8]}"
    _, error = client.create_stream(stream)
    if error:
        raise RuntimeError(f"sequin-py: {error}")
    started = time.perf_counter()
    for i in range(count):
        _, error = client.send_message(stream, f"bench.k{i % KEYS}", PAYLOAD)
        if error:
            raise RuntimeError(f"sequin-py: {error}")
    elapsed = time.perf_counter() - started
    client.delete_stream(stream)
    return count / elapsed


async def nats_rate(url: str, count: int, payload: bytes = PAYLOAD.encode()) -> float:
    """Events/s with nats-py JetStream ``publish_async``, every publish acked."""
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        stream = f"bench{uuid.uuid4().hex[:8]}"
        await js.add_stream(name=stream, subjects=[f"{stream}.>"])  # file storage
        subjects = [f"{stream}.k{i}" for i in range(KEYS)]
        started = time.perf_counter()
        futures = [await js.publish_async(subjects[i % KEYS], payload) for i in range(count)]
        await asyncio.wait_for(js.publish_async_completed(), 120)
        elapsed = time.perf_counter() - started
        failed = sum(1 for f in futures if f.exception() is not None)
        stored = (await js.stream_info(stream)).state.messages
        await js.delete_stream(stream)
    finally:
        await nc.close()
    if failed or stored != count:
        raise RuntimeError(f"nats: {failed} failed, {stored}/{count} stored")
    return count / elapsed


async def streamkit_latencies(url: str, seconds: float) -> list[float]:
    """Milliseconds from ``publish`` to ``on_ack``, one event every ``1/LATENCY_RATE`` s."""
    measured: list[float] = []
    async with streamkit.connect(url) as client:
        stream = f"bench-{uuid.uuid4().hex[:8]}"
        await client.create_stream(stream)

        async def send(i: int) -> None:
            sent = time.perf_counter()

            def on_ack(_: object) -> None:
                measured.append((time.perf_counter() - sent) * 1000)

            await client.publish(stream, Event(PAYLOAD, key=f"bench.k{i % KEYS}"), on_ack=on_ack)

        await steady(int(seconds * LATENCY_RATE), LATENCY_RATE, send)
        await client.flush(timeout=30)
        await client.delete_stream(stream)
    return measured


async def nats_latencies(url: str, seconds: float) -> list[float]:
    """Milliseconds from ``publish_async`` to its PubAck, one event every ``1/LATENCY_RATE`` s."""
    import nats

    nc = await nats.connect(url)
    measured: list[float] = []
    try:
        js = nc.jetstream()
        stream = f"bench{uuid.uuid4().hex[:8]}"
        await js.add_stream(name=stream, subjects=[f"{stream}.>"])
        payload = PAYLOAD.encode()

        async def send(i: int) -> None:
            sent = time.perf_counter()
            await (await js.publish_async(f"{stream}.k{i % KEYS}", payload))
            measured.append((time.perf_counter() - sent) * 1000)

        await steady(int(seconds * LATENCY_RATE), LATENCY_RATE, send)
        await js.delete_stream(stream)
    finally:
        await nc.close()
    return measured


async def latencies_beside_large(url: str, seconds: float) -> tuple[list[float], float]:
    """`streamkit_latencies` while another process publishes 64 KB events to another
    stream at `LARGE_RATE`/s; also the rate it reached."""
    command = [sys.executable, "-m", "benchmarks.large_traffic", "--url", url]
    command += ["--rate", str(LARGE_RATE), "--seconds", str(seconds + 1)]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"large_traffic said {line!r}")
        process.stdin.write(b"go\n")
        await process.stdin.drain()
        await asyncio.sleep(0.5)  # its traffic is under way
        measured = await streamkit_latencies(url, seconds)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    report = await _report(process, "large_traffic", LARGE_TIMEOUT)
    return measured, report["rate"]


def latency_rows(system: str, measured: list[float], beside: str = "") -> list[Measurement]:
    """p50 and p99 rows of publish->ack latencies (``beside``: what else ran)."""
    note = f"{len(measured):,} events at {LATENCY_RATE}/s"
    return [
        Measurement(
            SCENARIO, f"{system} publish->ack p{p}{beside}", percentile(measured, p), "ms", note
        )
        for p in (50, 99)
    ]


async def publisher_rss(url: str, count: int) -> dict[str, float]:
    """Run `benchmarks.publish_rss` in its own process; return what it reports."""
    command = [sys.executable, "-m", "benchmarks.publish_rss", "--url", url]
    command += ["--count", str(count), "--warm-up", str(WARM_UP)]
    process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
    return await _report(process, "publish_rss", RSS_TIMEOUT)


async def _report(
    process: asyncio.subprocess.Process, name: str, timeout: float
) -> dict[str, float]:
    """The JSON line a benchmark process ``name`` ends its output with, once it exits
    (killed if it takes longer than ``timeout``)."""
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"{name} exited with {process.returncode}")
    report: dict[str, float] = json.loads(stdout.decode().strip().splitlines()[-1])
    return report


async def best_of(runs: int, measure: Callable[[], Awaitable[float]]) -> float:
    """The best rate of ``runs`` runs (the first one also warms connections and caches)."""
    return max([await measure() for _ in range(runs)])


async def run(ctx: Context) -> list[Measurement]:
    """Measure streamkit, its peers and the publisher's memory."""
    count = ctx.size(200_000, 50_000)
    sequin_count = ctx.size(2_000, 500)
    rss_count = ctx.size(1_000_000, 200_000)
    url = ctx.streamkit_url

    def m(name: str, value: float, unit: str, note: str = "") -> Measurement:
        return Measurement(SCENARIO, name, value, unit, note)

    # The bare client meets the server in the state the publisher does (its dedupe
    # window, the purge of the streams deleted before), and the peers the same host.
    nats_url, redis_url = ctx.nats_url, ctx.redis_url
    measures: dict[str, Callable[[], Awaitable[float]]] = {
        "ours": functools.partial(streamkit_rate, url, count),
        "server_only": functools.partial(bare.streamkit_server_rate, url, count),
    }
    if nats_url is not None:
        measures["nats"] = functools.partial(nats_rate, nats_url, count)
    if redis_url is not None:
        measures["redis"] = functools.partial(
            redis_streams.publish_rate, redis_url, count, PAYLOAD.encode()
        )
    rates = await interleaved(RUNS, measures, float)
    ours, server_only = rates["ours"], rates["server_only"]
    best = f"best of {RUNS}, interleaved"
    keyless = await best_of(RUNS, lambda: streamkit_rate(url, count, keys=0))
    sequin = await best_of(RUNS, lambda: asyncio.to_thread(sequin_rate, url, sequin_count))
    alone = f"best of {RUNS}"
    rows = [
        m("streamkit publisher", ours, "events/s", f"{count:,} events, {KEYS} keys, {best}"),
        m("streamkit publisher, no keys", keyless, "events/s", f"one ordered lane, {alone}"),
        m("sequin-py, 1 msg/request", sequin, "events/s", f"{sequin_count:,} events, {alone}"),
        m("streamkit / sequin-py", ours / sequin, "x"),
    ]
    async with bare.serving(ctx.scratch) as bare_url:
        floor = await best_of(RUNS, lambda: bare.rate(bare_url, count))
        ceiling = await best_of(RUNS, lambda: bare.rate(bare_url, count, prebuilt=True))
    per_request = f"{count:,} events, {bare.PER_REQUEST}/request, {bare.IN_FLIGHT} in flight"
    bare_note = f"{per_request}, {alone}"
    rows += [
        m("bare aiohttp + SQLite pipeline", floor, "events/s", bare_note),
        m("  bodies made before the clock", ceiling, "events/s", alone),
        m("bare client -> streamkit server", server_only, "events/s", f"{per_request}, {best}"),
        m("streamkit / bare pipeline", ours / floor, "x"),
    ]
    if nats_url is not None:
        peer = rates["nats"]
        rows += [
            m("nats-py JetStream publish_async", peer, "events/s", f"{count:,} events, {best}"),
            m("streamkit / nats JetStream", ours / peer, "x"),
        ]
    else:
        missing = "skipped: no nats-server binary"
        rows.append(m("nats-py JetStream publish_async", math.nan, "events/s", missing))
    if redis_url is not None:
        peer = rates["redis"]
        note = f"{count:,} events, pipelines of 1000, {redis_streams.IN_FLIGHT} in flight, {best}"
        rows += [
            m("redis-py XADD pipelines", peer, "events/s", note),
            m("streamkit / redis XADD", ours / peer, "x"),
        ]
    else:
        missing = "skipped: redis-server not installed"
        rows.append(m("redis-py XADD pipelines", math.nan, "events/s", missing))
    seconds = ctx.size(3, 1)
    rows += latency_rows("streamkit", await streamkit_latencies(url, seconds))
    if nats_url is not None:
        rows += latency_rows("nats JetStream", await nats_latencies(nats_url, seconds))
    if redis_url is not None:
        lat = await redis_streams.publish_latencies(
            redis_url, seconds, LATENCY_RATE, PAYLOAD.encode()
        )
        rows += latency_rows("redis XADD", lat)
    beside, large_rate = await latencies_beside_large(url, seconds)
    rows += latency_rows("streamkit", beside, ", 64 KB beside")
    rows.append(
        m(
            "  64 KB events/s beside",
            large_rate,
            "events/s",
            f"another stream, {LARGE_RATE}/s asked",
        )
    )
    rss = await publisher_rss(url, rss_count)
    rate = f"{rss['rate']:,.0f} events/s"
    rows += [
        m("RSS, client connected", rss["connected_mb"], "MB", "separate process"),
        m(f"RSS after {WARM_UP:,} events", rss["warm_mb"], "MB", "buffer filled once"),
        m(f"peak RSS after {rss_count:,} more", rss["peak_mb"], "MB", rate),
    ]
    return rows
