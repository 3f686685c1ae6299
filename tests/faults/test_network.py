"""Network: the publisher and a subscription keep going while a proxy cuts, stalls and refuses.

Client and server talk through :class:`~tests.faults.proxy.FaultyProxy`. While
events are published and consumed, a chaos task resets (RST), drops (FIN) and
stalls every live connection, and refuses new ones for a moment. Afterwards:
every publish acked is stored once, every stored message was acked exactly
once by the subscriber (so no ack batch was lost: a lost ack would bring the
message back after ``ack_wait`` and it would be acked twice), and the consumer
has nothing pending or in flight.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import streamkit
from streamkit import Ack, AsyncClient, Event, Nack, PublisherConfig
from streamkit.testing import ServerHandle, run_server
from tests.stream_reads import read_all

from .integrity import check_db
from .proxy import FaultyProxy

STREAM = "net"
CONSUMER = "net-c"
ACK_WAIT_S = 3.0  # longer than any single fault, so only a lost ack could cause a redelivery


@dataclass
class Chaos:
    """A bounded schedule of faults, run against a proxy."""

    proxy: FaultyProxy
    faults: int
    seed: int = 7
    done: Counter[str] = field(default_factory=Counter)

    async def run(self) -> None:
        rng = random.Random(self.seed)
        for _ in range(self.faults):
            await asyncio.sleep(rng.uniform(0.08, 0.2))
            kind = rng.choice(["reset", "drop", "stall", "refuse"])
            if kind == "reset":
                self.proxy.reset_all()
            elif kind == "drop":
                self.proxy.drop_all()
            elif kind == "stall":
                self.proxy.stall()
                await asyncio.sleep(rng.uniform(0.2, 0.6))
                self.proxy.resume()
            else:
                self.proxy.refuse(True)
                await asyncio.sleep(rng.uniform(0.1, 0.3))
                self.proxy.refuse(False)
            self.done[kind] += 1
        self.proxy.resume()
        self.proxy.refuse(False)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    async with run_server(tmp_path / "net.db") as handle:
        yield handle


async def network_run(server: ServerHandle, total: int, faults: int) -> dict[str, Any]:
    proxy = FaultyProxy(int(server.url.rsplit(":", 1)[1]))
    await proxy.start()
    chaos = Chaos(proxy, faults)
    acks: dict[str, int] = {}
    nacks: dict[str, str] = {}
    acked_by_seq: Counter[int] = Counter()
    deliveries = redeliveries = 0
    config = PublisherConfig(max_batch=100, backoff=0.02, max_backoff=0.3, retry_deadline=60.0)

    def on_ack(ack: Ack) -> None:
        acks[ack.id] = ack.seq

    def on_nack(nack: Nack) -> None:
        nacks[nack.id] = nack.code

    async def publish(client: AsyncClient) -> None:
        chunk = 50
        for start in range(0, total, chunk):
            events = [
                Event(f"net-{i:06d}", key=f"net.k{i % 8}")
                for i in range(start, min(start + chunk, total))
            ]
            await client.publish(STREAM, events, on_ack=on_ack, on_nack=on_nack)
            await asyncio.sleep(0.03)
        await client.flush(timeout=60)

    subscribed = asyncio.Event()

    async def consume(client: AsyncClient) -> None:
        nonlocal deliveries, redeliveries
        async with client.subscribe(STREAM, consumer=CONSUMER, batch_size=50, wait_for=1.0) as sub:
            subscribed.set()  # joining happens before the chaos; staying joined is the test
            async for event in sub:
                deliveries += 1
                redeliveries += event.delivery_count > 1
                assert event.seq is not None
                acked_by_seq[event.seq] += 1
                await event.ack()
                if len(acked_by_seq) >= total:
                    break

    direct = streamkit.connect(server.url, timeout=5.0)
    pub_client = streamkit.connect(proxy.url, publisher=config, timeout=2.0)
    sub_client = streamkit.connect(proxy.url, timeout=2.0)
    try:
        await direct.create_stream(STREAM)
        await direct.create_consumer(STREAM, CONSUMER, ">", ack_wait=ACK_WAIT_S)
        consuming = asyncio.create_task(consume(sub_client), name="consume")
        await asyncio.wait_for(subscribed.wait(), 10)
        chaotic = asyncio.create_task(chaos.run(), name="chaos")
        try:
            await asyncio.wait_for(publish(pub_client), 90)
            await asyncio.wait_for(asyncio.shield(consuming), 90)
            await asyncio.wait_for(chaotic, 30)
        finally:
            for task in (consuming, chaotic):
                task.cancel()
            await asyncio.gather(consuming, chaotic, return_exceptions=True)
        await pub_client.close()
        await sub_client.close()

        async def settled() -> tuple[int, int]:
            c = await direct.get_consumer(STREAM, CONSUMER)
            return c.pending, c.in_flight

        state = (-1, -1)
        for _ in range(100):  # bounded: 5 s
            state = await settled()
            if state == (0, 0):
                break
            await asyncio.sleep(0.05)
        stored = await read_all(direct, STREAM)
        message_count = (await direct.get_stream(STREAM)).message_count
    finally:
        await pub_client.close()
        await sub_client.close()
        await direct.close()
        await proxy.close()

    stored_ids = Counter(e.id for e in stored)
    figures = {
        "published": total,
        "acked": len(acks),
        "nacked": len(nacks),
        "stored": len(stored),
        "duplicated": sum(n - 1 for n in stored_ids.values() if n > 1),
        "lost": sum(1 for i in acks if i not in stored_ids),
        "consumed": len(acked_by_seq),
        "deliveries": deliveries,
        "redeliveries": redeliveries,
        "acked_twice": sum(1 for n in acked_by_seq.values() if n > 1),
        "consumer_pending_in_flight": state,
        "faults": dict(chaos.done),
        "proxy": vars(proxy.stats),
    }
    assert sum(chaos.done.values()) == faults
    assert proxy.stats.resets + proxy.stats.drops > 0, figures  # cuts hit live connections
    assert not nacks and len(acks) == total, figures
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures
    assert len(stored) == message_count == total, figures
    assert set(acked_by_seq) == {e.seq for e in stored}, figures
    assert figures["acked_twice"] == 0, figures
    assert state == (0, 0), figures
    return figures


async def test_publish_and_subscribe_through_cuts(
    server: ServerHandle,
    caplog: pytest.LogCaptureFixture,
    record_property: Callable[[str, object], None],
) -> None:
    caplog.set_level(logging.ERROR, logger="streamkit.server")
    record_property("figures", await network_run(server, total=3000, faults=25))
    check_db(server.db_path).assert_ok()
    assert not [r for r in caplog.records if r.name.startswith("streamkit.server")]


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_publish_and_subscribe_through_many_cuts(
    server: ServerHandle, record_property: Callable[[str, object], None]
) -> None:
    record_property("figures", await network_run(server, total=20_000, faults=150))
    check_db(server.db_path).assert_ok()
