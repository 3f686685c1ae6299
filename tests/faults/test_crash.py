"""Crash: SIGKILL the server during a big background publish, restart it on the same db and port.

Every event the client saw acked must be stored (with the seq its ack named),
nothing stored twice, and every event settled exactly once; the publisher
retries through the outage with the same event ids, so the rest also end acked.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import streamkit
from streamkit import Ack, Event, Nack, PublisherConfig
from streamkit.server.store.sqlite.datafiles import FILE_DATA_CHARS
from tests.server_process import ServerProcess
from tests.stream_reads import read_all

from .helpers import wait_until
from .integrity import check_db

STREAM = "crash"


def _at_least(acks: dict[str, int], n: int) -> Callable[[], bool]:
    return lambda: len(acks) >= n


def _data(i: int, large_every: int | None) -> str:
    if large_every is not None and i % large_every == 0:  # kept in a data file
        return f"payload-{i:06d}-" + "L" * FILE_DATA_CHARS
    return f"payload-{i:06d}"


async def crash_run(
    tmp_path: Path, total: int, kills: int, large_every: int | None = None
) -> dict[str, Any]:
    """Publish ``total`` events, SIGKILL + restart the server ``kills`` times; return figures.

    With ``large_every``, every such event has data large enough for a data file."""
    server = ServerProcess(tmp_path / "crash.db")
    await server.astart()
    acks: dict[str, int] = {}
    ack_calls: Counter[str] = Counter()
    nacks: dict[str, str] = {}
    acked_at_kill: list[int] = []
    config = PublisherConfig(max_batch=500, backoff=0.02, max_backoff=0.25, retry_deadline=60.0)

    def on_ack(ack: Ack) -> None:
        ack_calls[ack.id] += 1
        acks[ack.id] = ack.seq

    def on_nack(nack: Nack) -> None:
        ack_calls[nack.id] += 1
        nacks[nack.id] = nack.code

    try:
        async with streamkit.connect(server.url, publisher=config, timeout=3.0) as client:
            await client.create_stream(STREAM)
            events = [Event(_data(i, large_every), key=f"crash.k{i % 16}") for i in range(total)]
            publishing = asyncio.create_task(
                client.publish(STREAM, events, on_ack=on_ack, on_nack=on_nack)
            )
            for k in range(kills):
                target = total * (k + 1) // (kills + 2)
                await wait_until(_at_least(acks, target), 60, f"{target} acks")
                server.kill()
                acked_at_kill.append(len(acks))
                await asyncio.sleep(0.3)  # the publisher meets refused connections meanwhile
                await server.astart()
            await asyncio.wait_for(publishing, 120)
            await client.flush(timeout=120)
            stored = await read_all(client, STREAM)
            message_count = (await client.get_stream(STREAM)).message_count
    finally:
        server.stop()
    integrity = check_db(server.db)

    ids = [e.id for e in events]
    stored_ids = Counter(e.id for e in stored)
    stored_seq = {e.id: e.seq for e in stored}
    sent_data = {e.id: e.data for e in events}
    figures = {
        "published": total,
        "kills": kills,
        "acked_at_kill": acked_at_kill,
        "acked": len(acks),
        "nacked": len(nacks),
        "stored": len(stored),
        "duplicated": sum(n - 1 for n in stored_ids.values() if n > 1),
        "lost": sum(1 for i in acks if i not in stored_ids),
        "seq_mismatch": sum(1 for i, seq in acks.items() if stored_seq.get(i) != seq),
        "data_mismatch": sum(1 for e in stored if e.data != sent_data.get(e.id)),
    }
    # Every event settled exactly once, by exactly one of on_ack / on_nack.
    assert set(ack_calls) == set(ids) and max(ack_calls.values()) == 1
    assert not set(acks) & set(nacks)
    # Each kill landed mid-publish.
    assert all(0 < n < total for n in acked_at_kill), acked_at_kill
    # Acked means stored, at the acked seq; nothing stored twice or from elsewhere.
    assert figures["lost"] == 0 and figures["seq_mismatch"] == 0, figures
    assert figures["data_mismatch"] == 0, figures
    assert figures["duplicated"] == 0, figures
    assert set(stored_ids) <= set(ids)
    assert len({e.seq for e in stored}) == len(stored)
    # The server was back well within retry_deadline: the rest were retried to success.
    assert not nacks, Counter(nacks.values())
    assert len(stored) == total == message_count
    integrity.assert_ok()
    return figures


async def test_kill_mid_publish_20k(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    record_property("figures", await crash_run(tmp_path, 20_000, kills=2))


async def test_kill_mid_publish_with_data_files(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    figures = await crash_run(tmp_path, 6_000, kills=2, large_every=5)
    assert list((tmp_path / "crash.db-data").glob("*.dat"))  # the data files were used
    record_property("figures", figures)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_kill_mid_publish_100k(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    record_property("figures", await crash_run(tmp_path, 100_000, kills=3))
