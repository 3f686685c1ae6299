"""The jetstream scenario: what the HTTP gateway costs over talking to JetStream directly.

Both sides run in the same process against the same ``nats-server -js``, in
the same run, with 100-byte events over 16 keys:

- publish: the gateway (``streamkit serve --engine jetstream`` in its own
  process) gets ``POST .../messages`` of 100 events, 8 requests in flight;
  each request is one JetStream atomic batch. nats-py directly: the same
  atomic batches (what the gateway does for you), and plain ``publish_async``
  (JetStream's fastest acked path, no all-or-nothing).
- consume: ``receive`` 100 + ``ack`` through the gateway, 8 workers;
  nats-py directly: ``fetch(100)`` on a durable pull consumer + acks.

Run alone with ``python -m benchmarks --only jetstream`` (or ``python -m
benchmarks.jetstream`` against servers it starts itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from benchmarks.harness import Context, Measurement, Process, _wait_for_http, free_port

SCENARIO = "jetstream"
PAYLOAD = "x" * 100
KEYS = 16
BATCH = 100
CONCURRENCY = 8
RUNS = 2


def _messages(start: int, count: int) -> list[dict[str, str]]:
    return [{"key": f"bench.k{i % KEYS}", "data": PAYLOAD} for i in range(start, start + count)]


@contextlib.asynccontextmanager
async def gateway(nats_url: str) -> AsyncIterator[str]:
    """A ``streamkit serve --engine jetstream`` process; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "streamkit.server", "--engine", "jetstream"]
    command += ["--nats", nats_url, "--nats-prefix", "bench", "--port", str(port)]
    command += ["--log-level", "WARNING"]
    process = Process(await asyncio.create_subprocess_exec(*command), f"http://127.0.0.1:{port}")
    try:
        await _wait_for_http(process, "/api/streams")
        yield process.url
    finally:
        await process.stop()


async def _post(http: aiohttp.ClientSession, url: str, body: Any) -> Any:
    async with http.post(url, json=body) as resp:
        if resp.status >= 300:
            raise RuntimeError(f"{url}: {resp.status} {await resp.text()}")
        return await resp.json()


async def _spread(count: int, work: Callable[[int, int], Awaitable[None]]) -> None:
    """Run ``work(start, size)`` over ``count`` events in batches, ``CONCURRENCY`` at a time."""
    starts = iter(range(0, count, BATCH))

    async def lane() -> None:
        for start in starts:
            await work(start, min(BATCH, count - start))

    await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))


async def gateway_rates(url: str, count: int) -> tuple[float, float]:
    """(publish, consume) events/s through the gateway."""
    stream = f"b{uuid.uuid4().hex[:8]}"
    base = f"{url}/api/streams/{stream}"
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        await _post(http, f"{url}/api/streams", {"name": stream})
        consumer = {"name": "bench", "filter_key_pattern": ">", "max_ack_pending": 100_000}
        await _post(http, f"{base}/consumers", consumer)

        async def publish(start: int, size: int) -> None:
            await _post(http, f"{base}/messages", {"messages": _messages(start, size)})

        started = time.perf_counter()
        await _spread(count, publish)
        publish_rate = count / (time.perf_counter() - started)

        done = 0

        async def worker() -> None:
            nonlocal done
            while done < count:
                params = {"batch_size": str(BATCH), "wait_for": "200"}
                async with http.get(f"{base}/consumers/bench/receive", params=params) as resp:
                    items = (await resp.json())["data"]
                if items:
                    ids = [i["ack_id"] for i in items]
                    await _post(http, f"{base}/consumers/bench/ack", {"ack_ids": ids})
                    done += len(items)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        consume_rate = count / (time.perf_counter() - started)
        async with http.delete(base):
            pass
    return publish_rate, consume_rate


async def direct_rates(nats_url: str, count: int) -> tuple[float, float, float]:
    """(atomic-batch publish, publish_async, consume) events/s with nats-py directly."""
    import nats
    from nats.js.api import AckPolicy

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = f"direct{uuid.uuid4().hex[:8]}"
    payload = PAYLOAD.encode()
    try:
        await js.add_stream(name=stream, subjects=[f"{stream}.>"], allow_atomic=True)

        async def batch(start: int, size: int) -> None:
            batch_id = secrets.token_hex(16)
            for n in range(1, size + 1):
                headers = {"Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(n)}
                subject = f"{stream}.k{(start + n) % KEYS}"
                if n < size:
                    await nc.publish(subject, payload, headers=headers)
                else:
                    headers["Nats-Batch-Commit"] = "1"
                    reply = await nc.request(subject, payload, headers=headers, timeout=30)
                    if b'"error"' in reply.data:
                        raise RuntimeError(reply.data.decode())

        started = time.perf_counter()
        await _spread(count, batch)
        batch_rate = count / (time.perf_counter() - started)

        started = time.perf_counter()
        for i in range(count):
            await js.publish_async(f"{stream}.k{i % KEYS}", payload)
        await asyncio.wait_for(js.publish_async_completed(), 120)
        async_rate = count / (time.perf_counter() - started)

        await js.add_consumer(
            stream, durable_name="bench", ack_policy=AckPolicy.EXPLICIT, max_ack_pending=100_000
        )
        sub = await js.pull_subscribe_bind("bench", stream)
        started = time.perf_counter()
        done = 0
        while done < count:
            msgs = await sub.fetch(BATCH, timeout=5)
            for msg in msgs:
                await msg.ack()
            done += len(msgs)
        await nc.flush()
        consume_rate = count / (time.perf_counter() - started)
        await js.delete_stream(stream)
    finally:
        await nc.close()
    return batch_rate, async_rate, consume_rate


async def best_of(runs: int, measure: Callable[[], Awaitable[tuple[float, ...]]]) -> list[float]:
    """Per position, the best value of ``runs`` runs."""
    results = [await measure() for _ in range(runs)]
    return [max(values) for values in zip(*results, strict=True)]


async def run(ctx: Context) -> list[Measurement]:
    """Measure publish and consume through the gateway and directly."""

    def m(name: str, value: float, unit: str, note: str = "") -> Measurement:
        return Measurement(SCENARIO, name, value, unit, note)

    nats_url = ctx.nats_url
    if nats_url is None:
        return [m("gateway publish", math.nan, "events/s", "no nats-server binary")]
    count = ctx.size(100_000, 20_000)
    note = f"{count:,} events, {BATCH}/request, {CONCURRENCY} in flight, best of {RUNS}"
    async with gateway(nats_url) as url:
        g_pub, g_con = await best_of(RUNS, lambda: gateway_rates(url, count))
    d_batch, d_async, d_con = await best_of(RUNS, lambda: direct_rates(nats_url, count))
    return [
        m("gateway publish (HTTP, atomic batches)", g_pub, "events/s", note),
        m("nats-py atomic batches", d_batch, "events/s", f"same batches, {CONCURRENCY} in flight"),
        m("nats-py publish_async", d_async, "events/s", "no batch atomicity"),
        m("gateway / direct, publish", g_pub / d_batch, "x", "same atomic batches"),
        m("gateway / publish_async", g_pub / d_async, "x"),
        m("gateway consume (receive + ack)", g_con, "events/s", note),
        m("nats-py fetch + ack", d_con, "events/s", f"fetch({BATCH}), one consumer"),
        m("gateway / direct, consume", g_con / d_con, "x"),
    ]


def main() -> None:
    """``python -m benchmarks.jetstream [--quick]``: start the servers, run, print."""
    from benchmarks.harness import print_table, servers

    quick = "--quick" in sys.argv

    async def go() -> list[Measurement]:
        async with servers(quick) as ctx:
            return await run(ctx)

    print_table(asyncio.run(go()))


if __name__ == "__main__":
    main()
