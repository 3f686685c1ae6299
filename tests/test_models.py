"""The values streamkit passes around: acks from the wire, publications, event ids."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from streamkit import Ack, DecodeError, Event, Nack
from streamkit.models import (
    Publication,
    ack_fields_from_runs,
    ack_fields_from_wire,
    acks_from_wire,
    new_event_id,
    python_event_id,
)

STAMP = "2024-07-01T12:00:00.123456Z"


def test_the_acks_of_one_commit_share_one_datetime() -> None:
    items = [{"id": f"e{i}", "seq": 10 + i, "committed": STAMP} for i in range(3)]
    seqs, committed = ack_fields_from_wire(items)
    assert seqs == [10, 11, 12]
    assert committed[0] == datetime(2024, 7, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    assert all(moment is committed[0] for moment in committed)
    acks = acks_from_wire(items)
    assert [(a.id, a.seq) for a in acks] == [("e0", 10), ("e1", 11), ("e2", 12)]


def test_acks_of_several_commits_keep_each_its_own() -> None:
    later = "2024-07-01T12:00:01Z"
    items: list[dict[str, Any]] = [
        {"id": "a", "seq": 1, "committed": STAMP},
        {"id": "b", "seq": "2", "committed": later},
        {"id": "c", "seq": 3, "committed": STAMP},
    ]
    seqs, committed = ack_fields_from_wire(items)
    assert seqs == [1, 2, 3]
    assert [c.second for c in committed] == [0, 1, 0]
    assert ack_fields_from_wire([]) == ([], [])


@pytest.mark.parametrize(
    "items",
    [
        [{"id": "a", "committed": STAMP}],  # no seq
        [{"id": "a", "seq": "x", "committed": STAMP}],
        [{"id": "a", "seq": 1, "committed": "yesterday"}],
        ["not an object"],
    ],
)
def test_malformed_acks_raise_decode_error(items: list[Any]) -> None:
    with pytest.raises(DecodeError):
        ack_fields_from_wire(items)
    with pytest.raises(DecodeError):
        acks_from_wire(items)


def test_an_ack_without_id_is_malformed_where_acks_are_made() -> None:
    with pytest.raises(DecodeError):
        acks_from_wire([{"seq": 1, "committed": STAMP}])


async def test_an_ack_settled_by_its_fields_is_made_once_when_asked_for() -> None:
    event = Event("x")
    publication = Publication(event)
    committed = datetime.now(timezone.utc)
    assert event.publishing
    assert publication.settle_ack(7, committed)
    assert publication.settled and event.acked and not event.nacked and not event.publishing
    ack = await event.wait_for_ack()
    assert ack == Ack(event.id, 7, committed)
    assert publication.outcome is ack and await event.wait_for_ack() is ack
    assert not publication.settle(Nack(event.id, "closed", "late"))  # settled once
    assert not publication.settle_ack(8, committed)
    assert event.acked


async def test_a_waiter_gets_an_ack_settled_by_its_fields() -> None:
    event = Event("x")
    publication = Publication(event)
    committed = datetime.now(timezone.utc)
    task = asyncio.ensure_future(event.wait_for_ack(timeout=5))
    await asyncio.sleep(0)
    assert publication.settle_ack(3, committed)
    assert (await task).seq == 3


UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.mark.parametrize("make", [new_event_id, python_event_id])
def test_event_ids_are_uuid7_strings_ordered_by_time(make: Callable[[], str]) -> None:
    before = time.time_ns() // 1_000_000
    ids = [make() for _ in range(2000)]  # more than one refill of the pure-Python tails
    after = time.time_ns() // 1_000_000
    assert all(UUID7.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
    stamps = [uuid.UUID(i).int >> 80 for i in ids]
    assert stamps == sorted(stamps) and before <= stamps[0] and stamps[-1] <= after
    assert {uuid.UUID(i).version for i in ids} == {7}


def test_ack_runs_give_each_message_its_seq_and_commit_time() -> None:
    later = "2024-07-01T12:00:01Z"
    seqs, committed = ack_fields_from_runs([[41, 3, STAMP], [7, 1, later], [44, 2, STAMP]], 6)
    assert seqs == [41, 42, 43, 7, 44, 45]
    assert [c.second for c in committed] == [0, 0, 0, 1, 0, 0]
    assert committed[0] is committed[2]  # one datetime per run


@pytest.mark.parametrize(
    "runs",
    [
        {"first": 1},
        [[1, 2]],  # no commit time
        [[1, 0, STAMP]],  # an empty run
        [[True, 2, STAMP]],
        [["1", 2, STAMP]],
        [[1, 2, "yesterday"]],
        [[1, 1, STAMP]],  # covers fewer messages than were sent
        [[1, 3, STAMP]],  # and more
        [[1, 10**12, STAMP]],  # far more: refused before a list that long is made
    ],
)
def test_malformed_ack_runs_raise_decode_error(runs: Any) -> None:
    with pytest.raises(DecodeError):
        ack_fields_from_runs(runs, 2)
