"""Redis Streams through redis-py's asyncio client: the peer for publish and consume+ack.

`harness.servers` starts ``redis-server`` with an append-only file fsynced once
a second, so an acknowledged XADD survives a crash of the server process (not
of the machine), as an acked publish does with streamkit's SQLite engine and
with JetStream's file store; none of the three fsyncs each write. Events are
stream entries ``{key, data}``.

- publish: pipelines of XADD (``transaction=False``), ``IN_FLIGHT`` of them at
  a time, each on its own connection, like the publisher's lanes;
- consume+ack: one consumer of a consumer group, ``XREADGROUP COUNT n`` then
  one ``XACK`` of the batch's ids;
- latency: one ``XADD`` per event at a steady rate, until its reply.

Every function takes ``redis://host:port`` and needs the ``redis`` package.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from benchmarks.harness import steady

IN_FLIGHT = 4
"""Pipelines in flight at once (the streamkit publisher's default lanes)."""


def _client(url: str, connections: int = IN_FLIGHT) -> Any:
    import redis.asyncio

    pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=connections)
    return redis.asyncio.Redis(connection_pool=pool)


def _fields(count: int, payload: bytes, keys: int) -> list[dict[bytes, bytes]]:
    names = [f"bench.k{i}".encode() for i in range(keys)]
    return [{b"key": names[i % keys], b"data": payload} for i in range(count)]


async def publish_rate(
    url: str, count: int, payload: bytes, *, pipeline: int = 1000, keys: int = 16
) -> float:
    """Events/s with XADD pipelines of ``pipeline`` entries, `IN_FLIGHT` at a time."""
    client = _client(url)
    stream = f"bench-{uuid.uuid4().hex[:8]}"
    entries = _fields(count, payload, keys)
    starts = iter(range(0, count, pipeline))

    async def lane() -> None:
        for start in starts:
            pipe = client.pipeline(transaction=False)
            for fields in entries[start : start + pipeline]:
                pipe.xadd(stream, fields)
            await pipe.execute()

    try:
        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
        elapsed = time.perf_counter() - started
        stored = await client.xlen(stream)
        await client.delete(stream)
    finally:
        await client.aclose()
    if stored != count:
        raise RuntimeError(f"redis: {stored}/{count} stored")
    return count / elapsed


async def consume_rate(
    url: str, count: int, payload: bytes, *, batch: int = 1000
) -> tuple[float, float]:
    """Events/s with ``XREADGROUP COUNT batch`` + one ``XACK`` per batch, one consumer,
    and this process's CPU µs per event meanwhile."""
    client = _client(url)
    stream = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        await client.xgroup_create(stream, "bench", id="0", mkstream=True)
        entries = _fields(count, payload, 16)
        for start in range(0, count, 1000):
            pipe = client.pipeline(transaction=False)
            for fields in entries[start : start + 1000]:
                pipe.xadd(stream, fields)
            await pipe.execute()
        received = 0
        started, cpu = time.perf_counter(), time.process_time()
        while received < count:
            reply = await client.xreadgroup("bench", "c1", {stream: ">"}, count=batch, block=5000)
            if not reply:
                raise RuntimeError(f"redis: nothing to read after {received}/{count}")
            ids = [entry_id for entry_id, _ in reply[0][1]]
            await client.xack(stream, "bench", *ids)
            received += len(ids)
        elapsed = time.perf_counter() - started
        cpu_us = (time.process_time() - cpu) / count * 1e6
        pending = (await client.xpending(stream, "bench"))["pending"]
        await client.delete(stream)
    finally:
        await client.aclose()
    if pending:
        raise RuntimeError(f"redis: {pending} still pending")
    return count / elapsed, cpu_us


async def publish_latencies(url: str, seconds: float, rate: int, payload: bytes) -> list[float]:
    """Milliseconds from sending one XADD to its reply, one event every ``1/rate`` s."""
    client = _client(url, connections=64)
    stream = f"bench-{uuid.uuid4().hex[:8]}"
    measured: list[float] = []

    async def send(i: int) -> None:
        sent = time.perf_counter()
        await client.xadd(stream, {b"key": f"bench.k{i % 16}".encode(), b"data": payload})
        measured.append((time.perf_counter() - sent) * 1000)

    try:
        await steady(int(seconds * rate), rate, send)
        await client.delete(stream)
    finally:
        await client.aclose()
    return measured
