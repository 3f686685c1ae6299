"""Stateless gateways: three ``streamkit serve --engine jetstream`` processes, one NATS.

Publish through all of them, consume through different ones (acks go through
yet another), SIGKILL one mid-run: every message is stored once and acked
once, nothing is lost.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.nats_server import NatsServer, free_port

TOTAL = 600
BATCH = 20


@dataclass
class Gateway:
    """One gateway process."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_gateway(nats_url: str, log: Path, prefix: str) -> Gateway:
    port = free_port()
    command = [sys.executable, "-m", "streamkit.server", "--engine", "jetstream"]
    command += ["--nats", nats_url, "--nats-prefix", prefix, "--port", str(port)]
    command += ["--log-level", "WARNING"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMKIT_")}
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    gateway = Gateway(port, proc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited: {log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(gateway.url + "/api/streams", timeout=1) as resp:
                if resp.status == 200:
                    return gateway
        except OSError:
            time.sleep(0.05)
    gateway.kill()
    raise TimeoutError("gateway did not come up")


@pytest.fixture
def gateways(nats_server: NatsServer, tmp_path: Path) -> Iterator[list[Gateway]]:
    started: list[Gateway] = []
    try:
        for i in range(3):
            started.append(start_gateway(nats_server.url, tmp_path / f"gw{i}.log", "gw"))
        yield started
    finally:
        for gateway in started:
            gateway.stop()


class Cluster:
    """Round-robin over live gateways; a request to a dead one moves on to the next."""

    def __init__(self, http: aiohttp.ClientSession, gateways: list[Gateway]) -> None:
        self.http = http
        self.gateways = gateways
        self.dead: set[int] = set()

    async def call(self, start: int, method: str, path: str, body: Any = None) -> Any:
        for attempt in range(len(self.gateways) * 20):
            index = (start + attempt) % len(self.gateways)
            if index in self.dead:
                continue
            try:
                url = self.gateways[index].url + path
                async with self.http.request(method, url, json=body) as resp:
                    if resp.status == 503:
                        await asyncio.sleep(0.05)
                        continue
                    assert resp.status < 300, (resp.status, await resp.text())
                    return await resp.json()
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.01)
        raise AssertionError(f"no gateway answered {method} {path}")


async def test_gateways_share_everything_and_survive_a_kill(gateways: list[Gateway]) -> None:
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        cluster = Cluster(http, gateways)
        await cluster.call(0, "POST", "/api/streams", {"name": "orders"})
        body = {"name": "billing", "filter_key_pattern": ">", "ack_wait_ms": 2000}
        await cluster.call(1, "POST", "/api/streams/orders/consumers", body)

        acked: Counter[int] = Counter()
        delivered: Counter[int] = Counter()
        published = asyncio.Event()
        killed = asyncio.Event()

        async def publisher() -> None:
            for n, start in enumerate(range(0, TOTAL, BATCH)):
                batch = [
                    {"key": f"k.{i % 5}", "data": str(i), "id": f"msg-{i}"}
                    for i in range(start, start + BATCH)
                ]
                await cluster.call(n, "POST", "/api/streams/orders/messages", {"messages": batch})
                if start == TOTAL // 2:
                    gateways[2].kill()  # mid-run, while everybody is busy
                    cluster.dead.add(2)
                    killed.set()
            published.set()

        async def consumer(home: int) -> None:
            path = "/api/streams/orders/consumers/billing"
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while loop.time() < deadline:
                if published.is_set() and len(acked) == TOTAL:
                    return
                got = await cluster.call(home, "GET", path + "/receive?batch_size=25&wait_for=200")
                items = got["data"]
                for item in items:
                    delivered[item["message"]["seq"]] += 1
                ids = [item["ack_id"] for item in items]
                if ids:  # settle through another gateway than the one that delivered
                    await cluster.call(home + 1, "POST", path + "/ack", {"ack_ids": ids})
                    for item in items:
                        acked[item["message"]["seq"]] += 1

        await asyncio.gather(publisher(), *(consumer(i) for i in range(3)))
        assert killed.is_set()

        stream = await cluster.call(0, "GET", "/api/streams/orders")
        assert stream["stats"]["message_count"] == TOTAL  # retried batches deduped
        assert sorted(acked) == list(range(1, TOTAL + 1))
        assert set(acked.values()) == {1}, "a message was acked more than once"
        messages = await cluster.call(0, "GET", "/api/streams/orders/messages?limit=1000")
        assert sorted(int(m["data"]) for m in messages["data"]) == list(range(TOTAL))
        stats = (await cluster.call(1, "GET", "/api/streams/orders/consumers/billing"))["stats"]
        assert stats == {"pending": 0, "in_flight": 0, "dead": 0, "skipped": 0}
