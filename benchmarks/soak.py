"""The soak scenario: disk and memory stay flat while a stream at its limit takes millions.

A server of its own (``python -m streamkit.server`` on a fresh database) gets
5M events of 100 bytes (500k with ``--quick``) into one stream created with
``retain_up_to`` 500k (50k), in requests of 1000 events, 4 in flight. Every
twentieth of the way it samples the database file, the WAL and the server's
resident memory. Once the stream is full (a tenth of the way) retention trims
as much as is published, so after warm-up the samples should be flat: that
is what this scenario shows, as a curve per quantity and the spread after
warm-up in the table.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import orjson

from benchmarks.harness import Context, Measurement, start_streamkit

SCENARIO = "soak"
PAYLOAD = "x" * 100
BATCH = 1000
IN_FLIGHT = 4
SAMPLES = 20
WARM_UP = 4
"""Samples taken before the figures count as steady (the stream fills in the first two)."""
FIGURE = "soak: MiB vs million events published"
MIB = 1024 * 1024


def _file_mib(path: Path) -> float:
    return path.stat().st_size / MIB if path.exists() else 0.0


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` now, in MiB (``VmRSS``; 0 where /proc is missing)."""
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return 0.0
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _publish(http: aiohttp.ClientSession, url: str, body: bytes, batches: int) -> None:
    """Send ``batches`` copies of ``body``, ``IN_FLIGHT`` at a time; every event stored."""
    left = batches

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with http.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                reply = await response.json()
                if response.status != 200 or reply["data"]["published"] != BATCH:
                    raise RuntimeError(f"publish failed: {response.status} {reply}")

    workers = [
        asyncio.create_task(worker(), name=f"bench-soak-publisher-{i}") for i in range(IN_FLIGHT)
    ]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def run(ctx: Context) -> list[Measurement]:
    """Publish, sample, and report the samples as curves and their spread after warm-up."""
    total = ctx.size(5_000_000, 500_000)
    retain = total // 10
    scratch = ctx.scratch / "soak"
    scratch.mkdir()
    db = scratch / "streamkit.db"
    wal = db.with_name(db.name + "-wal")
    server = await start_streamkit(scratch)
    body = orjson.dumps(
        {"messages": [{"key": f"soak.k{i % 16}", "data": PAYLOAD} for i in range(BATCH)]}
    )
    samples: list[tuple[float, float, float, float]] = []  # (M events, db, wal, rss) MiB
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            stream_url = f"{server.url}/api/streams/soak"
            created = await http.post(
                f"{server.url}/api/streams", json={"name": "soak", "retain_up_to": retain}
            )
            created.raise_for_status()
            step = total // SAMPLES // BATCH
            started = time.perf_counter()
            for i in range(1, SAMPLES + 1):
                await _publish(http, stream_url + "/messages", body, step)
                rss = rss_mib(server.process.pid)
                samples.append((i * step * BATCH / 1e6, _file_mib(db), _file_mib(wal), rss))
            elapsed = time.perf_counter() - started
            async with http.get(stream_url) as response:
                kept = (await response.json())["stats"]["message_count"]
    finally:
        await server.stop()
    published = SAMPLES * step * BATCH
    if kept != retain:
        raise RuntimeError(f"the stream keeps {kept} events, not {retain}")
    return _measurements(samples, published, published / elapsed, retain)


def _measurements(
    samples: list[tuple[float, float, float, float]], published: int, rate: float, retain: int
) -> list[Measurement]:
    steady = samples[WARM_UP:]
    disk = [db + wal for _, db, wal, _ in steady]
    rss = [r for *_, r in steady]
    note = f"after warm-up ({samples[WARM_UP - 1][0]:g}M events), stream keeps {retain:,}"
    rows = [
        Measurement(SCENARIO, "events published", published, "events", "100 B each"),
        Measurement(SCENARIO, "publish rate", rate, "events/s", "1000 per request, 4 in flight"),
        Measurement(SCENARIO, "db + WAL, lowest", min(disk), "MiB", note),
        Measurement(SCENARIO, "db + WAL, highest", max(disk), "MiB", note),
        Measurement(SCENARIO, "server RSS, lowest", min(rss), "MiB", note),
        Measurement(SCENARIO, "server RSS, highest", max(rss), "MiB", note),
    ]
    for x, db, wal, r in samples:
        for series, value in (("db file", db), ("WAL", wal), ("db + WAL", db + wal), ("RSS", r)):
            rows.append(
                Measurement(SCENARIO, f"{series}, x={x:g}", value, "MiB", "", FIGURE, series, x)
            )
    return rows
