"""Leases on the SQLite engine: a receive's first deliveries as one row, settled
message by message through acks, nacks, extends and max_ack_pending."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streamkit.server.store.base import ConsumerSpec, Delivery, StreamOptions
from streamkit.server.store.sqlite.leases import TOKEN_PREFIX
from streamkit.server.store.sqlite.store import SqliteStore
from tests.faults.integrity import check_db


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "leases.db")
    await store.open()
    await store.create_stream("s", StreamOptions())
    await store.publish("s", [{"key": "s.k", "data": str(i)} for i in range(20)])
    try:
        yield store
    finally:
        await store.close()
        check_db(tmp_path / "leases.db").assert_ok()


async def _consumer(
    store: SqliteStore, name: str, *, max_ack_pending: int = 10_000, max_deliver: int | None = None
) -> None:
    spec = ConsumerSpec(
        name=name,
        filter_key_pattern=">",
        max_ack_pending=max_ack_pending,
        max_deliver=max_deliver,
    )
    await store.create_consumer("s", spec)


def _ids(deliveries: list[Delivery]) -> list[str]:
    return [d["ack_id"] for d in deliveries]


def _seqs(deliveries: list[Delivery]) -> list[int]:
    return [d["message"]["seq"] for d in deliveries]


async def test_one_lease_per_receive_settled_piecemeal(store: SqliteStore) -> None:
    await _consumer(store, "c")
    got = await store.receive("s", "c", 10)
    assert _seqs(got) == list(range(1, 11))
    assert len({a.partition(".")[2] for a in _ids(got)}) == 1  # one token: one lease
    assert all(a.partition(".")[2].startswith(TOKEN_PREFIX) for a in _ids(got))

    await store.extend("s", "c", _ids(got[:3]))  # these three leave the lease
    await store.nack("s", "c", _ids(got[3:5]))
    await store.ack("s", "c", _ids(got[5:]) + _ids(got[:3]))
    await store.ack("s", "c", _ids(got[5:]))  # twice: nothing more happens
    stats = (await store.get_consumer("s", "c")).stats
    assert stats is not None
    assert (stats.in_flight, stats.pending) == (0, 12)

    again = await store.receive("s", "c", 10)
    assert _seqs(again)[:2] == [4, 5]  # redeliveries first
    assert [d["delivery_count"] for d in again[:2]] == [2, 2]
    assert _seqs(again)[2:] == list(range(11, 19))


async def test_max_ack_pending_counts_leased_messages(store: SqliteStore) -> None:
    await _consumer(store, "c", max_ack_pending=5)
    first = await store.receive("s", "c", 10)
    assert len(first) == 5
    assert await store.receive("s", "c", 10) == []
    await store.ack("s", "c", _ids(first[:2]))
    assert _seqs(await store.receive("s", "c", 10)) == [6, 7]


async def test_a_whole_lease_extended_stays_one_lease(store: SqliteStore) -> None:
    await _consumer(store, "c")
    got = await store.receive("s", "c", 4)
    await store.extend("s", "c", _ids(got))
    stats = (await store.get_consumer("s", "c")).stats
    assert stats is not None and stats.in_flight == 4
    await store.ack("s", "c", _ids(got))
    stats = (await store.get_consumer("s", "c")).stats
    assert stats is not None and (stats.in_flight, stats.pending) == (0, 16)


async def test_single_attempt_consumers_keep_a_row_per_delivery(store: SqliteStore) -> None:
    await _consumer(store, "once", max_deliver=1)
    got = await store.receive("s", "once", 3)
    assert not any(a.partition(".")[2].startswith(TOKEN_PREFIX) for a in _ids(got))
    await store.ack("s", "once", _ids(got))
    stats = (await store.get_consumer("s", "once")).stats
    assert stats is not None and (stats.in_flight, stats.pending) == (0, 17)
