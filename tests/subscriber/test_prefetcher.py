"""`Prefetcher`: bounded read-ahead, round-robin across streams, reconnects, fatal errors."""

from __future__ import annotations

import asyncio

import pytest

from streamkit import errors
from streamkit._http.retry import Backoff
from streamkit.models import Event
from streamkit.subscriber._prefetcher import Prefetcher

from .fake_api import FakeAPI, attached, delivery

pytestmark = pytest.mark.timeout(10)


def fast_backoff() -> Backoff:
    return Backoff(base=0.001, cap=0.005)


def make(api: FakeAPI, streams: list[str], prefetch: int = 2) -> tuple[Prefetcher, list[Event]]:
    seen: list[Event] = []
    prefetcher = Prefetcher(
        api,
        attached({s: "c" for s in streams}),
        batch_size=10,
        wait_for=0.05,
        prefetch=prefetch,
        on_batch=lambda received: seen.extend(received.events()),
        backoff=fast_backoff,
    )
    return prefetcher, seen


async def test_reads_ahead_at_most_prefetch_batches() -> None:
    api = FakeAPI(on_receive=lambda stream: [delivery(stream)])
    prefetcher, seen = make(api, ["a"], prefetch=2)
    prefetcher.start()
    await asyncio.sleep(0.05)
    assert len(api.receives) == 2 and prefetcher.buffered == 2
    first = await prefetcher.next_batch()
    assert first is not None and first.events() == seen[:1]
    await asyncio.sleep(0.05)
    assert len(api.receives) == 3 and prefetcher.buffered == 2
    await prefetcher.stop()
    assert prefetcher.buffered == 0
    assert await prefetcher.next_batch() is None


async def test_streams_take_turns() -> None:
    api = FakeAPI(
        batches={
            "busy": [[delivery("busy")] for _ in range(6)],
            "quiet": [[delivery("quiet")]],
        }
    )
    prefetcher, _ = make(api, ["busy", "quiet"], prefetch=3)
    prefetcher.start()
    await asyncio.sleep(0.02)
    order = []
    for _ in range(4):
        batch = await prefetcher.next_batch()
        assert batch is not None
        order.append(batch.stream)
    await prefetcher.stop()
    assert order[:2] in (["busy", "quiet"], ["quiet", "busy"])
    assert order[2:] == ["busy", "busy"]


async def test_failures_that_heal_are_retried_and_polling_resumes() -> None:
    event = delivery("a")
    api = FakeAPI(
        batches={"a": [[event]]},
        failures=[errors.ConnectError("refused"), errors.ServerError(500, "boom")] * 3,
    )
    prefetcher, _ = make(api, ["a"])
    prefetcher.start()
    batch = await asyncio.wait_for(prefetcher.next_batch(), 2.0)
    assert batch is not None and batch.events() == [event]
    assert len(api.receives) >= 7  # six failures, the success, maybe the next poll
    await prefetcher.stop()


@pytest.mark.parametrize(
    "failure",
    [
        errors.NotFound(404, "Not found: No `consumer` found matching the provided ID or name"),
        errors.Unauthorized(401, "bad token"),
        errors.BadRequest(400, "bad"),
        errors.ValidationError(422, "Validation failed"),
        errors.ClientClosed("the client is closed"),
        RuntimeError("a bug"),
    ],
)
async def test_failures_that_cannot_heal_are_raised(failure: Exception) -> None:
    api = FakeAPI(failures=[failure])
    prefetcher, _ = make(api, ["a"])
    prefetcher.start()
    with pytest.raises(type(failure)):
        await asyncio.wait_for(prefetcher.next_batch(), 2.0)
    await prefetcher.stop()
