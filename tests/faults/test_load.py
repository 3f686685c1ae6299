"""Load: 50 concurrent long-pollers and a few publishers for a bounded time.

The server (a subprocess) must keep its memory bounded (RSS sampled from
``/proc/<pid>/status`` throughout and after) and answer ``/health`` within a
generous bound the whole time; nothing may fail with a 5xx.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.server_process import ServerProcess

from .integrity import check_db

STREAM = "load"
CONSUMERS = 5
POLLERS = 50  # 10 per consumer: under max_waiting (20), so none is refused
PUBLISHERS = 4
HEALTH_BOUND_S = 2.0
RSS_GROWTH_BOUND_KIB = 256 * 1024
"""Generous: SQLite's page caches (64 MiB per connection) fill up, and every published id
is remembered for the dedupe window (2 min), so RSS grows with the publish rate until then."""


async def load_run(tmp_path: Path, seconds: float) -> dict[str, Any]:
    server = ServerProcess(tmp_path / "load.db")
    await server.astart()
    statuses: Counter[int] = Counter()
    health: list[float] = []
    rss: list[int] = []
    received = published = 0
    stop = asyncio.Event()
    payload = "x" * 1024
    try:
        limits = aiohttp.TCPConnector(limit=POLLERS + PUBLISHERS + 10)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=limits, timeout=timeout) as http:
            base = server.url + f"/api/streams/{STREAM}"
            async with http.post(server.url + "/api/streams", json={"name": STREAM}) as r:
                assert r.status == 201
            for c in range(CONSUMERS):
                body = {"name": f"c{c}", "filter_key_pattern": ">", "ack_wait_ms": 5000}
                async with http.post(base + "/consumers", json=body) as r:
                    assert r.status == 201
            for _ in range(20):  # warm up, then take the baseline
                async with http.get(server.url + "/api/ping") as r:
                    await r.read()
            baseline = server.rss_kib()

            async def poller(n: int) -> None:
                nonlocal received
                url = f"{base}/consumers/c{n % CONSUMERS}"
                while not stop.is_set():
                    params = {"batch_size": 50, "wait_for": 500}
                    async with http.post(url + "/receive", params=params) as r:
                        statuses[r.status] += 1
                        data = (await r.json()).get("data", []) if r.status == 200 else []
                    if data:
                        received += len(data)
                        ids = {"ack_ids": [d["ack_id"] for d in data]}
                        async with http.post(url + "/ack", json=ids) as r:
                            statuses[r.status] += 1

            async def publisher(n: int) -> None:
                nonlocal published
                i = 0
                while not stop.is_set():
                    messages = [
                        {"key": f"load.p{n}", "data": payload, "id": f"p{n}-{i}-{j}"}
                        for j in range(100)
                    ]
                    async with http.post(base + "/messages", json={"messages": messages}) as r:
                        statuses[r.status] += 1
                        if r.status == 200:
                            published += (await r.json())["data"]["published"]
                    i += 1
                    await asyncio.sleep(0.01)

            async def prober() -> None:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as own:
                    while not stop.is_set():
                        start = time.perf_counter()
                        async with own.get(server.url + "/health") as r:
                            assert r.status == 200
                        health.append(time.perf_counter() - start)
                        rss.append(server.rss_kib())
                        await asyncio.sleep(0.1)

            tasks = [asyncio.create_task(poller(n)) for n in range(POLLERS)]
            tasks += [asyncio.create_task(publisher(n)) for n in range(PUBLISHERS)]
            tasks.append(asyncio.create_task(prober()))
            await asyncio.sleep(seconds)
            stop.set()
            done, pending = await asyncio.wait(tasks, timeout=15)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                task.result()  # re-raise what failed
            assert not pending, f"{len(pending)} load tasks did not stop"
            await asyncio.sleep(0.5)
            after = server.rss_kib()
    finally:
        server.stop()
    check_db(server.db).assert_ok()
    figures = {
        "seconds": seconds,
        "pollers": POLLERS,
        "publishers": PUBLISHERS,
        "published": published,
        "received": received,
        "statuses": dict(statuses),
        "health_probes": len(health),
        "health_max_ms": round(max(health) * 1000, 1),
        "health_median_ms": round(sorted(health)[len(health) // 2] * 1000, 1),
        "rss_baseline_mib": round(baseline / 1024, 1),
        "rss_quartiles_mib": [round(rss[len(rss) * q // 4 - 1] / 1024, 1) for q in (1, 2, 3, 4)],
        "rss_peak_mib": round(max(rss) / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
    }
    assert not [s for s in statuses if s >= 500], figures
    assert statuses[429] == 0, figures
    assert published > 0 and received > 0, figures
    assert len(health) >= seconds * 3, figures  # probes kept running throughout
    assert max(health) < HEALTH_BOUND_S, figures
    assert max(rss) - baseline < RSS_GROWTH_BOUND_KIB, figures
    assert after - baseline < RSS_GROWTH_BOUND_KIB, figures
    return figures


async def test_long_pollers_and_publishers_for_5s(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    record_property("figures", await load_run(tmp_path, 5.0))


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_long_pollers_and_publishers_for_60s(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    record_property("figures", await load_run(tmp_path, 60.0))
