"""The scaling scenario: curves of events/s against batch size, payload and consumer processes.

- batch size (1, 10, 100, 1000 events per request): streamkit's publisher with
  ``max_batch`` set to it, and redis-py XADD pipelines of that many entries;
- payload (100 B, 1 KB, 16 KB, 64 KB): streamkit's publisher, nats-py JetStream
  ``publish_async`` and redis-py XADD pipelines, about the same bytes per point;
  and nats-py against a server that syncs before it acknowledges
  (``sync_interval: always``, `harness.start_nats`), as streamkit does for data
  files (16 KB and 64 KB), with fewer events (`SYNCED_COUNT`): it is slow;
- consumer processes (1 to 4) competing on one streamkit consumer
  (`benchmarks.consume.competing_rate`).

Every point is a rate of acked (or consumed and acked) events, the best of
``RUNS`` runs (`PAYLOAD_RUNS` for the payload curve; one with ``--quick``); the
systems of a point take turns, run by run (`harness.interleaved`), so that they
meet the host in the same state. Counts
are sized so that a point takes a second or less. The points are measurements with
a ``figure``, a ``series`` and an ``x``: `harness.print_curves` prints them and
`benchmarks.plot` draws them.
"""

from __future__ import annotations

from functools import partial

from benchmarks import consume, publish, redis_streams
from benchmarks.harness import Context, Measurement, interleaved
from streamkit import PublisherConfig

SCENARIO = "scaling"
RUNS = 2
PAYLOAD_RUNS = 3
"""Runs per payload point: a 64 KB point is a quarter of a second per system, and in
two full runs of the same code nats-py's own best of 2 moved from 8.4k to 10.1k."""
BATCH_SIZES = (1, 10, 100, 1000)
PAYLOADS = (100, 1024, 16 * 1024, 64 * 1024)
PROCESSES = (1, 2, 3, 4)

SYNCED_LINE = "nats-py JetStream, sync always"
SYNCED_COUNT = 4096
"""Events per payload point of nats-py against the server that syncs each write."""

BY_BATCH = "publish vs batch size (events per request)"
BY_PAYLOAD = "publish vs payload size (bytes)"
BY_PROCESSES = "consume+ack vs consumer processes"
"""The figures' titles."""


def point(figure: str, line: str, x: float, value: float, note: str) -> Measurement:
    """One point (events/s) of the ``line`` of ``figure``."""
    return Measurement(SCENARIO, f"{line}, x={x:g}", value, "events/s", note, figure, line, x)


def batch_count(batch: int, quick: bool) -> int:
    """Events per batch-size point: a request costs about a millisecond, an event a few µs."""
    return min(batch * (500 if quick else 2000), 40_000 if quick else 150_000)


def payload_count(size: int, quick: bool) -> int:
    """Events per payload point: about 8 MB (128 MB in a full run), at most 30k (100k).

    With 32 MB, a 64 KB point was 512 events, a tenth of a second: the first and
    the last requests in flight were a good part of it.
    """
    return min((8 if quick else 128) * 1024 * 1024 // size, 30_000 if quick else 100_000)


async def by_batch_size(ctx: Context, runs: int) -> list[Measurement]:
    """streamkit ``max_batch`` and redis pipeline length against events/s."""
    rows = []
    for batch in BATCH_SIZES:
        count = batch_count(batch, ctx.quick)
        note = f"{count:,} events of 100 B, best of {runs}, interleaved"
        config = PublisherConfig(max_batch=batch)
        measures = {
            "streamkit": partial(publish.streamkit_rate, ctx.streamkit_url, count, config=config)
        }
        if ctx.redis_url is not None:
            payload = publish.PAYLOAD.encode()
            measures["redis-py XADD"] = partial(
                redis_streams.publish_rate, ctx.redis_url, count, payload, pipeline=batch
            )
        rates = await interleaved(runs, measures, float)
        rows += [point(BY_BATCH, line, batch, rate, note) for line, rate in rates.items()]
    return rows


async def by_payload(ctx: Context, runs: int) -> list[Measurement]:
    """streamkit, nats-py and redis-py events/s against the payload size."""
    rows = []
    for size in PAYLOADS:
        count = payload_count(size, ctx.quick)
        note = f"{count:,} events, best of {runs}, interleaved"
        text = "x" * size
        measures = {
            "streamkit": partial(publish.streamkit_rate, ctx.streamkit_url, count, payload=text)
        }
        if ctx.nats_url is not None:
            measures["nats-py JetStream"] = partial(
                publish.nats_rate, ctx.nats_url, count, text.encode()
            )
        if ctx.redis_url is not None:
            measures["redis-py XADD"] = partial(
                redis_streams.publish_rate, ctx.redis_url, count, text.encode()
            )
        synced_count = min(count, SYNCED_COUNT)
        if ctx.nats_synced_url is not None:
            measures[SYNCED_LINE] = partial(
                publish.nats_rate, ctx.nats_synced_url, synced_count, text.encode()
            )
        rates = await interleaved(runs, measures, float)
        synced_note = f"{synced_count:,} events, best of {runs}, interleaved"
        rows += [
            point(BY_PAYLOAD, line, size, rate, synced_note if line == SYNCED_LINE else note)
            for line, rate in rates.items()
        ]
    return rows


async def by_processes(ctx: Context) -> list[Measurement]:
    """Events/s of 1..4 processes competing on one streamkit consumer (one run each)."""
    count = ctx.size(100_000, 20_000)
    rows = []
    for workers in PROCESSES:
        rate, shares = await consume.competing_rate(ctx.streamkit_url, count, workers)
        note = f"{count:,} events, shares " + "/".join(f"{s:,}" for s in shares)
        rows.append(point(BY_PROCESSES, "streamkit", workers, rate, note))
    return rows


async def run(ctx: Context) -> list[Measurement]:
    """All three figures' curves."""
    runs = 1 if ctx.quick else RUNS
    return [
        *await by_batch_size(ctx, runs),
        *await by_payload(ctx, 1 if ctx.quick else PAYLOAD_RUNS),
        *await by_processes(ctx),
    ]
