"""A server killed with SIGKILL mid-publish and restarted: nothing lost unsaid, nothing doubled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

import streamkit
from streamkit import PublisherConfig
from tests.server_process import ServerProcess
from tests.stream_reads import read_all

from .fakes import Outcomes, make_events


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    process = ServerProcess(tmp_path / "restart.db")
    yield process
    process.stop()


async def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.005)


async def test_kill_and_restart_mid_publish(server: ServerProcess) -> None:
    await server.astart()
    config = PublisherConfig(max_batch=200, backoff=0.02, max_backoff=0.2, retry_deadline=30.0)
    async with streamkit.connect(server.url, publisher=config, timeout=3.0) as client:
        await client.create_stream("s")
        events = make_events(20_000, keys=16, size=100)
        outcomes = Outcomes()
        publishing = asyncio.create_task(
            client.publish("s", events, on_ack=outcomes.on_ack, on_nack=outcomes.on_nack)
        )
        await wait_until(lambda: len(outcomes.acks) >= 2000, timeout=30)
        server.kill()  # SIGKILL
        acked_before_kill = len(outcomes.acks)
        await asyncio.sleep(0.2)  # the publisher meets refused connections meanwhile
        await server.astart()
        await asyncio.wait_for(publishing, 60)
        await client.flush(timeout=60)

        outcomes.assert_each_settled_once(events)
        assert acked_before_kill < len(events)  # the kill did land mid-publish
        assert not outcomes.nacks  # the server came back well within retry_deadline
        stored = await read_all(client, "s")
        assert len(stored) == len({e.id for e in stored}) == len(events)
        assert (await client.get_stream("s")).message_count == len(events)
        ack_seq = {a.id: a.seq for a in outcomes.acks}
        assert all(ack_seq[e.id] == e.seq for e in stored)
