"""The pytest plugin's fixtures, used directly and from a user's test suite (``pytester``)."""

from __future__ import annotations

import pytest

from streamkit import Event
from streamkit.client import AsyncClient
from streamkit.testing import ServerHandle

pytest_plugins = ["pytester"]


async def test_client_fixture_talks_to_the_server_fixture(
    streamkit_client: AsyncClient, streamkit_server: ServerHandle
) -> None:
    assert streamkit_client.api.transport.base_url == streamkit_server.url
    assert (await streamkit_client.ping())["ok"] is True
    await streamkit_client.create_stream("orders")
    event = Event({"id": 7}, key="orders.eu.7")
    await streamkit_client.publish("orders", event)
    ack = await event.wait_for_ack(timeout=5)
    [stored] = await streamkit_client.get("orders")
    assert (stored.seq, stored.json()) == (ack.seq, {"id": 7})


USER_SUITE = """
import pytest
from streamkit import Event

seen = []


async def test_publish_and_subscribe(streamkit_client):
    seen.append(streamkit_client)
    await streamkit_client.create_stream("orders")
    await streamkit_client.create_consumer("orders", "billing", "orders.>")
    await streamkit_client.publish("orders", Event({"total": 12.5}, key="orders.eu.7"))
    await streamkit_client.flush()
    async for event in streamkit_client.subscribe("orders", consumer="billing"):
        assert event.json() == {"total": 12.5}
        await event.ack()
        break


async def test_every_test_gets_a_fresh_server_and_the_last_client_is_closed(
    streamkit_client, streamkit_server
):
    assert seen[0].closed
    assert streamkit_server.url.startswith("http://127.0.0.1:")
    assert await streamkit_client.list_streams() == []
"""


INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
QUICK = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
"""Plugins the inner runs do without (hypothesis' alone costs a second to import)."""


def test_a_users_suite_needs_no_broker(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_service=USER_SUITE)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(passed=2)


def test_the_fixtures_are_listed(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    result = pytester.runpytest("--fixtures", *QUICK)
    for name in ("streamkit_server", "streamkit_client"):
        result.stdout.fnmatch_lines([f"{name} -- *streamkit*testing.py*"])
