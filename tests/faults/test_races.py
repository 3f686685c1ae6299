"""Concurrent hostile clients: creates, deletes, publishes, receives and settles racing on a
handful of names. Nothing may fail with a 5xx or log an error, stats never go negative,
and the store passes the integrity check afterwards."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from streamkit.testing import run_server

from .integrity import check_db

STREAMS = ["s0", "s1", "s2"]
CONSUMERS = ["c0", "c1"]
OPS = ["cs", "ds", "pub", "cc", "dc", "recv", "ack", "nack", "extend", "read", "stream", "cons"]
WEIGHTS = [3, 1, 20, 3, 1, 20, 10, 5, 3, 5, 3, 3]


def _request(rng: random.Random, url: str, pool: list[str]) -> tuple[str, str, str, Any]:
    stream, consumer = rng.choice(STREAMS), rng.choice(CONSUMERS)
    base = f"{url}/api/streams/{stream}"
    c = f"{base}/consumers/{consumer}"
    op = rng.choices(OPS, WEIGHTS)[0]
    if op == "cs":
        body = {"name": stream, "one_message_per_key": rng.random() < 0.3}
        return op, "POST", f"{url}/api/streams", body
    if op == "ds":
        return op, "DELETE", base, None
    if op == "pub":
        messages = [
            {"key": f"k.{rng.randrange(5)}", "data": "x" * rng.randrange(50), "id": f"{n}"}
            for n in rng.sample(range(300), rng.randrange(1, 20))
        ]
        return op, "POST", f"{base}/messages", {"messages": messages}
    if op == "cc":
        body = {
            "name": consumer,
            "filter_key_pattern": rng.choice([">", "k.*", "k.1"]),
            "ack_wait_ms": rng.choice([5, 50, 1000]),
            "max_deliver": rng.choice([None, 1, 2]),
            "max_ack_pending": rng.choice([1, 5, 1000]),
        }
        return op, "POST", f"{base}/consumers", body
    if op == "dc":
        return op, "DELETE", c, None
    if op == "recv":
        query = f"batch_size={rng.randrange(1, 30)}&wait_for={rng.choice([0, 0, 20, 50])}"
        return op, "POST", f"{c}/receive?{query}", None
    if op in ("ack", "nack", "extend"):
        ids = rng.sample(pool, min(len(pool), rng.randrange(0, 10)))
        settle: dict[str, Any] = {"ack_ids": ids}
        if op == "nack":
            settle["delay_ms"] = rng.choice([0, 0, 10])
        return op, "POST", f"{c}/{op}", settle
    if op == "read":
        return op, "GET", f"{base}/messages?limit=50&wait_for={rng.choice([0, 20])}", None
    return op, "GET", base if op == "stream" else c, None


async def race(db: Path, workers: int, ops: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    statuses: Counter[int] = Counter()
    bad: list[object] = []
    pool: list[str] = []
    async with run_server(db, max_wait_ms=50) as server:
        connector = aiohttp.TCPConnector(limit=workers + 5)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

            async def worker() -> None:
                for _ in range(ops):
                    op, method, url, body = _request(rng, server.url, pool)
                    async with http.request(method, url, json=body) as r:
                        statuses[r.status] += 1
                        raw = await r.read()
                    if r.status >= 500:
                        bad.append((method, url, r.status, raw[:300]))
                    elif op == "recv" and r.status == 200:
                        pool.extend(d["ack_id"] for d in json.loads(raw)["data"])
                        del pool[:-500]
                    elif op in ("stream", "cons") and r.status == 200:
                        stats = json.loads(raw)["stats"]
                        if min(stats.values()) < 0:
                            bad.append(("negative stats", url, stats))

            await asyncio.gather(*(worker() for _ in range(workers)))
    integrity = check_db(db)
    figures = {"requests": workers * ops, "statuses": dict(statuses), **vars(integrity)}
    assert not bad, bad[:5]
    integrity.assert_ok()
    return figures


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    caplog.set_level(logging.ERROR)
    return lambda: [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_racing_clients(
    tmp_path: Path,
    errors: Callable[[], list[str]],
    record_property: Callable[[str, object], None],
) -> None:
    record_property("figures", await race(tmp_path / "race.db", workers=30, ops=150, seed=1))
    assert not errors()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", range(2, 12))
async def test_racing_clients_long(
    tmp_path: Path,
    seed: int,
    errors: Callable[[], list[str]],
    record_property: Callable[[str, object], None],
) -> None:
    record_property("figures", await race(tmp_path / "race.db", workers=50, ops=400, seed=seed))
    assert not errors()
