"""`Leaser`: one renewal request per stream per cycle, in time, and max_lease."""

from __future__ import annotations

import asyncio

import pytest

from streamkit.models import Event
from streamkit.subscriber._leaser import Leaser

from .fake_api import FakeAPI, attached, delivery

pytestmark = pytest.mark.timeout(10)


def ack_ids(events: list[Event]) -> list[str]:
    return [event.ack_id or "" for event in events]


async def test_renews_every_lease_in_one_request_per_stream_before_the_deadline() -> None:
    api = FakeAPI()
    deadline = 0.1
    leaser = Leaser(api, attached({"a": "c1", "b": "c2"}, {"a": deadline, "b": 1.0}))
    loop = asyncio.get_running_loop()
    a = [delivery("a") for _ in range(3)]
    b = [delivery("b")]
    leaser.add("a", ack_ids(a), loop.time())
    leaser.add("b", ack_ids(b), loop.time())
    leaser.start()
    started = loop.time()
    await asyncio.sleep(0.5)
    await leaser.stop()
    elapsed = loop.time() - started
    cycles = [c for c in api.calls if c.stream == "a"]
    # Cycles are at most 0.9 x the shortest deadline apart (jittered below that).
    assert len(cycles) >= int(elapsed / (0.9 * deadline))
    assert all(c.verb == "extend" and c.consumer == "c1" for c in cycles)
    assert all(c.ack_ids == [e.ack_id for e in a] for c in cycles)
    assert {tuple(c.ack_ids) for c in api.calls if c.stream == "b"} == {(b[0].ack_id,)}
    assert len(leaser) == 4  # stopping renewals keeps the leases for the subscription


async def test_settled_leases_are_no_longer_renewed() -> None:
    api = FakeAPI()
    leaser = Leaser(api, attached({"a": "c"}, {"a": 0.05}))
    events = [delivery("a"), delivery("a")]
    leaser.add("a", ack_ids(events), asyncio.get_running_loop().time())
    assert events[0].ack_id is not None
    assert leaser.remove("a", events[0].ack_id)
    assert not leaser.remove("a", events[0].ack_id)
    leaser.start()
    await asyncio.sleep(0.15)
    await leaser.stop()
    assert api.calls and all(c.ack_ids == [events[1].ack_id] for c in api.calls)
    assert leaser.pop_all() == {"a": [events[1].ack_id]}
    assert len(leaser) == 0


async def test_leases_held_past_max_lease_are_dropped() -> None:
    api = FakeAPI()
    dropped: list[str] = []
    leaser = Leaser(
        api, attached({"a": "c"}, {"a": 0.05}), max_lease=0.1, on_dropped=dropped.extend
    )
    held = ack_ids([delivery("a")])
    leaser.add("a", held, asyncio.get_running_loop().time())
    leaser.start()
    for _ in range(100):
        if not len(leaser):
            break
        await asyncio.sleep(0.01)
    await leaser.stop()
    assert not len(leaser) and dropped == held
    renewals = len(api.calls)
    assert renewals >= 1
    leaser.start()
    await asyncio.sleep(0.1)
    await leaser.stop()
    assert len(api.calls) == renewals
