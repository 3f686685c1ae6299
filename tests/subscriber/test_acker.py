"""`Acker`: batching, splitting, grouping by delay, retries, and the flush on stop."""

from __future__ import annotations

import asyncio

import pytest

from streamkit import errors

from .fake_api import FakeAPI, make_acker

pytestmark = pytest.mark.timeout(10)


async def settle(api: FakeAPI, count: int) -> None:
    for _ in range(500):
        if len(api.calls) >= count:
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"expected {count} requests, got {api.calls}")


async def test_acks_queued_together_go_in_one_request() -> None:
    api = FakeAPI()
    acker = make_acker(api, {"orders": "billing"}, interval=0.01)
    acker.start()
    for i in range(5):
        acker.ack("orders", f"a{i}")
    await settle(api, 1)
    await asyncio.sleep(0.03)
    assert [(c.verb, c.consumer, c.ack_ids) for c in api.calls] == [
        ("ack", "billing", [f"a{i}" for i in range(5)])
    ]
    await acker.stop(1.0)


async def test_a_full_request_goes_at_once_and_big_queues_are_split() -> None:
    api = FakeAPI()
    acker = make_acker(api, {"orders": "billing"}, interval=60.0, max_ids=100)
    acker.start()
    for i in range(250):
        acker.ack("orders", f"a{i}")
    await settle(api, 2)  # long before the 60 s interval
    assert all(len(c.ack_ids) <= 100 for c in api.calls)
    await acker.stop(1.0)
    assert api.settled("ack") == [f"a{i}" for i in range(250)]


async def test_nacks_are_grouped_by_stream_and_delay() -> None:
    api = FakeAPI()
    acker = make_acker(api, {"orders": "billing", "refunds": "billing"}, interval=0.005)
    acker.start()
    acker.nack("orders", "n1")
    acker.nack("orders", "n2", 2.0)
    acker.nack("orders", "n3", 2.0)
    acker.nack("refunds", "n4", 0.0)
    acker.ack("orders", "a1")
    await acker.stop(1.0)
    got = sorted((c.verb, c.stream, tuple(c.ack_ids), c.delay) for c in api.calls)
    assert got == [
        ("ack", "orders", ("a1",), None),
        ("nack", "orders", ("n1",), None),
        ("nack", "orders", ("n2", "n3"), 2.0),
        ("nack", "refunds", ("n4",), None),
    ]


async def test_nacks_with_different_reasons_go_in_different_requests() -> None:
    api = FakeAPI()
    acker = make_acker(api, {"orders": "billing"}, interval=0.005)
    acker.start()
    acker.nack("orders", "n1", reason="timeout")
    acker.nack("orders", "n2", reason="timeout")
    acker.nack("orders", "n3", reason="bad input")
    acker.nack("orders", "n4")
    await acker.stop(1.0)
    got = sorted((tuple(c.ack_ids), c.reason or "") for c in api.calls)
    assert got == [(("n1", "n2"), "timeout"), (("n3",), "bad input"), (("n4",), "")]


async def test_failures_that_heal_are_retried_until_the_ack_goes_through() -> None:
    api = FakeAPI(failures=[errors.ConnectError("down"), errors.Overloaded(503, "busy")])
    acker = make_acker(api, {"orders": "billing"}, interval=0.001)
    acker.start()
    acker.ack("orders", "a1")
    await acker.stop(5.0)
    assert api.settled("ack") == ["a1"]
    assert not api.failures


async def test_failures_that_cannot_heal_drop_the_ids(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeAPI(failures=[errors.NotFound(404, "Not found: No `consumer` found")])
    acker = make_acker(api, {"orders": "billing"}, interval=0.001)
    acker.start()
    acker.ack("orders", "a1")
    acker.ack("orders", "a2")
    await acker.stop(1.0)
    assert api.calls == []
    assert "dropping 2 acks" in caplog.text


async def test_stop_sends_everything_queued_then_refuses_more() -> None:
    api = FakeAPI()
    acker = make_acker(api, {"orders": "billing"}, interval=60.0)
    acker.start()
    acker.ack("orders", "a1")
    acker.nack("orders", "n1")
    await acker.stop(1.0)
    assert api.settled("ack") == ["a1"] and api.settled("nack") == ["n1"]
    with pytest.raises(errors.ClientClosed):
        acker.ack("orders", "a2")


async def test_stop_gives_up_after_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeAPI(failures=[errors.ConnectError("down")] * 1000)
    acker = make_acker(api, {"orders": "billing"}, interval=0.001)
    acker.start()
    acker.ack("orders", "a1")
    await acker.stop(0.2)
    assert api.calls == []
    assert "gave up" in caplog.text


def test_max_ids_is_bounded() -> None:
    with pytest.raises(ValueError):
        make_acker(FakeAPI(), {}, max_ids=1001)


async def test_a_batch_of_ids_goes_at_once_without_waiting_for_the_interval() -> None:
    api = FakeAPI()
    acker = make_acker(api, {"orders": "billing"}, interval=60.0)
    acker.start()
    acker.settle_many("orders", [f"a{i}" for i in range(3)])
    acker.settle_many("orders", ["n1", "n2"], nack=True, delay=2.0, reason="later")
    await settle(api, 2)  # long before the 60 s interval
    got = sorted((c.verb, tuple(c.ack_ids), c.delay) for c in api.calls)
    assert got == [("ack", ("a0", "a1", "a2"), None), ("nack", ("n1", "n2"), 2.0)]
    await acker.stop(1.0)
    with pytest.raises(errors.ClientClosed):
        acker.settle_many("orders", ["late"])
