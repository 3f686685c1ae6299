"""Transport edge cases against a mocked aiohttp: error mapping, retries, timeouts, bad bodies."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aioresponses import aioresponses

from streamkit import errors
from streamkit._http.api import API
from streamkit._http.retry import backoff_delay
from streamkit._http.transport import Transport, api_error
from streamkit.models import Event

BASE = "http://streamkit.test"


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport([BASE], timeout=2.0, retries=2, backoff=0.001, max_backoff=0.01)
    yield t
    await t.close()


async def test_json_round_trip(mocked: aioresponses, transport: Transport) -> None:
    mocked.get(f"{BASE}/api/ping", payload={"ok": True, "version": "x"})
    assert await transport.request("GET", "/api/ping") == {"ok": True, "version": "x"}


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequest),
        (401, errors.Unauthorized),
        (404, errors.NotFound),
        (409, errors.Conflict),
        (413, errors.PayloadTooLarge),
        (422, errors.ValidationError),
        (429, errors.Overloaded),
        (503, errors.Overloaded),
        (500, errors.ServerError),
        (418, errors.APIError),
    ],
)
async def test_status_maps_to_error(
    mocked: aioresponses, transport: Transport, status: int, cls: type[errors.APIError]
) -> None:
    mocked.get(f"{BASE}/x", status=status, payload={"summary": "nope", "code": "c"})
    with pytest.raises(cls) as info:
        await transport.request("GET", "/x")
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.summary == "nope"
    assert info.value.code == "c"


async def test_validation_errors_are_kept(mocked: aioresponses, transport: Transport) -> None:
    body = {"summary": "Validation failed", "validation_errors": {"messages[3].key": ["is bad"]}}
    mocked.post(f"{BASE}/x", status=422, payload=body)
    with pytest.raises(errors.ValidationError) as info:
        await transport.request("POST", "/x", json={})
    assert info.value.validation_errors == {"messages[3].key": ["is bad"]}
    assert "messages[3].key is bad" in str(info.value)


async def test_error_body_that_is_not_json(mocked: aioresponses, transport: Transport) -> None:
    mocked.get(f"{BASE}/x", status=502, body=b"<html>bad gateway</html>")
    with pytest.raises(errors.ServerError, match="bad gateway"):
        await transport.request("GET", "/x")


async def test_malformed_success_body_is_a_decode_error(
    mocked: aioresponses, transport: Transport
) -> None:
    mocked.get(f"{BASE}/x", status=200, body=b"{not json")
    with pytest.raises(errors.DecodeError):
        await transport.request("GET", "/x")


async def test_connection_error_maps_to_connect_error(
    mocked: aioresponses, transport: Transport
) -> None:
    mocked.get(f"{BASE}/x", exception=aiohttp.ClientConnectionError("refused"))
    with pytest.raises(errors.ConnectError):
        await transport.request("GET", "/x")


async def test_timeout_maps_to_timeout_error(mocked: aioresponses, transport: Transport) -> None:
    mocked.get(f"{BASE}/x", exception=asyncio.TimeoutError())
    with pytest.raises(errors.TimeoutError) as info:
        await transport.request("GET", "/x")
    assert isinstance(info.value, TimeoutError)  # also the builtin, for generic handlers


async def test_idempotent_requests_retry_transient_failures(
    mocked: aioresponses, transport: Transport
) -> None:
    mocked.get(f"{BASE}/x", exception=aiohttp.ServerDisconnectedError())
    mocked.get(f"{BASE}/x", status=503, payload={"summary": "busy"}, headers={"Retry-After": "0"})
    mocked.get(f"{BASE}/x", payload={"ok": True})
    assert await transport.request("GET", "/x", retry=True) == {"ok": True}


async def test_retries_are_bounded(mocked: aioresponses, transport: Transport) -> None:
    for _ in range(3):
        mocked.get(f"{BASE}/x", status=503, payload={"summary": "busy"})
    mocked.get(f"{BASE}/x", payload={"ok": True})  # never reached: 1 try + 2 retries
    with pytest.raises(errors.Overloaded):
        await transport.request("GET", "/x", retry=True)


async def test_non_idempotent_requests_are_not_retried(
    mocked: aioresponses, transport: Transport
) -> None:
    mocked.post(f"{BASE}/x", status=503, payload={"summary": "busy"})
    mocked.post(f"{BASE}/x", payload={"ok": True})
    with pytest.raises(errors.Overloaded):
        await transport.request("POST", "/x", json={})


async def test_client_errors_are_not_retried(mocked: aioresponses, transport: Transport) -> None:
    mocked.get(f"{BASE}/x", status=404, payload={"summary": "Not found"})
    mocked.get(f"{BASE}/x", payload={"ok": True})
    with pytest.raises(errors.NotFound):
        await transport.request("GET", "/x", retry=True)


async def test_fails_over_to_the_next_endpoint(mocked: aioresponses) -> None:
    t = Transport(["http://a.test", "http://b.test"], retries=1, backoff=0.001)
    try:
        mocked.get("http://a.test/x", exception=aiohttp.ClientConnectionError("down"))
        mocked.get("http://b.test/x", payload={"from": "b"})
        assert await t.request("GET", "/x", retry=True) == {"from": "b"}
        assert t.base_url == "http://b.test"
    finally:
        await t.close()


async def test_bearer_token_is_sent(mocked: aioresponses) -> None:
    t = Transport([BASE], api_key="s3cret")
    try:
        mocked.get(f"{BASE}/x", payload={})
        await t.request("GET", "/x")
        assert t._get_session().headers["Authorization"] == "Bearer s3cret"
    finally:
        await t.close()


async def test_closed_transport_refuses_requests(transport: Transport) -> None:
    await transport.close()
    with pytest.raises(errors.ClientClosed):
        await transport.request("GET", "/x")


def test_api_error_parses_retry_after() -> None:
    exc = api_error(429, b'{"summary":"slow down"}', "1.5")
    assert isinstance(exc, errors.Overloaded)
    assert exc.retry_after == 1.5
    assert api_error(429, b"", "soon").retry_after is None


def test_backoff_is_capped_and_jittered() -> None:
    delays = [backoff_delay(10, 0.1, 2.0) for _ in range(50)]
    assert all(0 <= d <= 2.0 for d in delays)
    assert len(set(delays)) > 1


def test_backoff_waits_at_least_retry_after_within_the_cap() -> None:
    assert all(backoff_delay(0, 0.001, 2.0, retry_after=1.5) >= 1.5 for _ in range(20))
    assert all(backoff_delay(0, 0.001, 2.0, retry_after=60) <= 2.0 for _ in range(20))


async def test_send_requires_per_message_acks(mocked: aioresponses, transport: Transport) -> None:
    """A Sequin server answers without acks; the client says so instead of guessing seqs."""
    mocked.post(f"{BASE}/api/streams/s/messages", payload={"data": {"published": 1}})
    with pytest.raises(errors.DecodeError, match="acks"):
        await API(transport).send("s", [Event("x").to_wire("s")])


async def test_receive_decodes_deliveries(mocked: aioresponses, transport: Transport) -> None:
    item = {
        "ack_id": "a1",
        "delivery_count": 2,
        "message": {
            "key": "k.1",
            "data": "hi",
            "seq": 5,
            "stream_id": "sid",
            "inserted_at": "2024-07-23T00:31:55.668060Z",
        },
    }
    mocked.post(
        re.compile(rf"{BASE}/api/streams/s/consumers/c/receive.*"), payload={"data": [item]}
    )
    (event,) = await API(transport).receive("s", "c", batch_size=5, wait_for=0.01)
    assert (event.ack_id, event.delivery_count, event.seq, event.key) == ("a1", 2, 5, "k.1")
    assert event.data == "hi" and event.stream == "s"
    assert event.inserted_at is not None and event.inserted_at.year == 2024


async def test_receive_rejects_malformed_items(mocked: aioresponses, transport: Transport) -> None:
    mocked.post(re.compile(rf"{BASE}/.*/receive.*"), payload={"data": [{"ack_id": "a"}]})
    with pytest.raises(errors.DecodeError):
        await API(transport).receive("s", "c")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.cancelling() is Python 3.11+")
@pytest.mark.parametrize(
    "error",
    [aiohttp.ClientConnectionError("connection closed"), asyncio.TimeoutError()],
    ids=["connection-error", "timeout"],
)
async def test_a_cancellation_turned_into_another_error_stays_a_cancellation(
    mocked: aioresponses, transport: Transport, error: Exception
) -> None:
    # aiohttp has turned a task's cancellation into one of these in some races; the
    # transport must not retry (nor its callers reconnect) a request that was stopped.
    calls = 0

    async def swallow_the_cancel(url: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise error from None

    mocked.get(f"{BASE}/x", callback=swallow_the_cancel, repeat=True)
    # (Without a cancellation these errors are retried: test_idempotent_requests_retry_...)
    request = asyncio.create_task(transport.request("GET", "/x", retry=True))
    await asyncio.sleep(0.05)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(request, 5)
    assert calls == 1
