"""The dashboard on every engine: the JSON it polls, and the pages in headless Chromium.

The server here samples its rates every 0.2 s (the default is 5 s) so that a
rate shows up within the test; nothing else differs from ``streamkit serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from streamkit.server.runner import start_server
from streamkit.server.store.base import Store
from tests.chromium import Chromium
from tests.http_api import Api, msgs

from .helpers import Engine, eventually, keys

BASE = "/api/streams/orders/consumers/billing"


@pytest_asyncio.fixture
async def engine(engine_store: tuple[str, Store]) -> AsyncIterator[Engine]:
    """The conformance server, sampling dashboard rates every 0.2 s."""
    name, store = engine_store
    running = await start_server(store, dashboard_interval=0.2)
    try:
        yield Engine(name=name, url=running.url, store=store)
    finally:
        if name == "jetstream":  # keep the shared nats-server small
            with contextlib.suppress(Exception):
                for stream in await store.list_streams():
                    await store.delete_stream(stream.id)
        await running.close()


async def _overview(api: Api, **params: str | int) -> dict[str, Any]:
    body: dict[str, Any] = await api.ok("GET", "/api/dashboard", params=params)
    return body


async def _consumer(api: Api, name: str = "billing") -> dict[str, Any]:
    body = await _overview(api, stream="orders", limit=1)
    row: dict[str, Any] = next(c for c in body["consumers"] if c["name"] == name)
    return row


# -- the JSON --------------------------------------------------------------------------


async def test_streams_show_counts_seqs_and_publish_rate(api: Api) -> None:
    await api.stream("orders")
    await api.stream("empty")
    await api.publish("orders", msgs("a", "b", "c"))
    body = await _overview(api)
    assert body["total"] == 2
    assert (body["stream"], body["consumers"]) == (None, None)
    selected = await _overview(api, stream="orders", q="empty")
    assert [s["name"] for s in selected["streams"]] == ["empty"]  # q pages the list
    assert selected["stream"]["name"] == "orders"  # stream picks one, whatever the page
    assert selected["stream"]["last_seq"] == 3
    by_name = {s["name"]: s for s in body["streams"]}
    assert [s["name"] for s in body["streams"]] == ["empty", "orders"]
    orders = by_name["orders"]
    assert (orders["message_count"], orders["first_seq"], orders["last_seq"]) == (3, 1, 3)
    assert orders["storage_size"] > 0
    assert (by_name["empty"]["first_seq"], by_name["empty"]["last_seq"]) == (None, None)
    # three messages published since the first sample: some interval shows a rate
    await eventually(
        lambda: _overview(api, q="orders"),
        lambda b: any(r > 0 for r in b["streams"][0]["publish_rate"]),
    )
    assert not any(r > 0 for r in (await _overview(api, q="empty"))["streams"][0]["publish_rate"])


async def test_lag_moves_with_publish_receive_and_ack(api: Api) -> None:
    await api.stream("orders")
    await api.consumer()
    assert (await _consumer(api))["lag"] == 0
    await api.publish("orders", msgs("a", "b", "c"))
    assert (await _consumer(api))["lag"] == 3
    got = await api.receive(batch_size=2)
    row = await _consumer(api)
    assert (row["lag"], row["pending"], row["in_flight"]) == (3, 1, 2)  # delivered is not acked
    await api.ack([d["ack_id"] for d in got])
    assert (await _consumer(api))["lag"] == 1
    rated = await eventually(lambda: _consumer(api), lambda c: any(r > 0 for r in c["ack_rate"]))
    assert rated["lag"] == 1


async def test_redeliveries_and_dead_letters_are_counted(api: Api) -> None:
    await api.stream("orders")
    await api.consumer(max_deliver=2)
    await api.publish("orders", msgs("a"))
    await api.nack([d["ack_id"] for d in await api.receive()])
    await api.nack([d["ack_id"] for d in await api.receive(wait_for=2000)])
    row = await eventually(lambda: _consumer(api), lambda c: c["dead"] == 1)
    assert (row["redelivered"], row["lag"], row["max_deliver"]) == (1, 0, 2)


async def test_streams_page_and_filter(api: Api) -> None:
    for i in range(12):
        await api.stream(f"s{i:02d}")
    await api.stream("other")
    body = await _overview(api, q="S", limit=5, offset=10)  # any case
    assert body["total"] == 12
    assert [s["name"] for s in body["streams"]] == ["s10", "s11"]
    assert (await _overview(api, limit=5))["total"] == 13
    assert [s["name"] for s in (await _overview(api, q="oth"))["streams"]] == ["other"]


async def test_a_thousand_streams_page_and_filter(api: Api) -> None:
    names = [f"s{i:04d}" for i in range(1000)]
    for start in range(0, len(names), 50):  # bounded: 50 requests at a time
        await asyncio.gather(*(api.stream(n) for n in names[start : start + 50]))
    await api.publish("s0999", msgs("a", "b"))
    first = await _overview(api)
    assert (first["total"], [s["name"] for s in first["streams"]]) == (1000, names[:50])
    last = await _overview(api, offset=900, limit=200)
    assert [s["name"] for s in last["streams"]] == names[900:]
    assert (last["streams"][-1]["message_count"], last["streams"][-1]["last_seq"]) == (2, 2)
    found = await _overview(api, q="S099")
    assert [s["name"] for s in found["streams"]] == names[990:]


async def test_bad_parameters_and_unknown_stream(api: Api) -> None:
    for params in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"q": "x" * 129}):
        status, body = await api.call("GET", "/api/dashboard", params=params)
        assert status == 400, params
        assert body["param"] == next(iter(params))
    status, body = await api.call("GET", "/api/dashboard", params={"stream": "nope"})
    assert status == 404
    assert "stream" in body["summary"]


# -- the pages, in a real browser ----------------------------------------------------------


async def test_pages_load_without_console_errors(api: Api, engine: Engine, tmp_path: Path) -> None:
    await api.stream("orders")
    await api.consumer(max_deliver=1)
    await api.publish("orders", msgs("a", "b"))
    await api.nack([d["ack_id"] for d in await api.receive(batch_size=1)])
    async with Chromium(tmp_path / "profile") as page:
        await page.goto(engine.url + "/")
        assert await page.evaluate("location.pathname") == "/ui/"
        await page.wait_for("document.querySelector('tr[data-stream=orders]') !== null")
        assert "1-1 of 1" in await page.text("#page-info")
        await page.click("tr[data-stream=orders] a")
        await page.wait_for("document.querySelector('tr[data-consumer=billing]') !== null")
        await page.wait_for("document.querySelector('[data-field=dead]').textContent === '1'")
        await page.click("[data-field=dead]")
        await page.wait_for("document.querySelector('#dead tr[data-seq=\"1\"]') !== null")
        await page.goto(engine.url + "/ui/#/streams/orders/tail")
        await page.wait_for("document.querySelector('#tail-state').textContent === 'live'")
        assert page.errors == []


async def test_published_event_appears_in_the_live_tail(
    api: Api, engine: Engine, tmp_path: Path
) -> None:
    await api.stream("orders")
    await api.publish("orders", msgs("old"))
    async with Chromium(tmp_path / "profile") as page:
        await page.goto(engine.url + "/ui/#/streams/orders/tail?key_pattern=orders.eu.>")
        await page.wait_for("document.querySelector('#tail-state').textContent === 'live'")
        await api.publish("orders", msgs("orders.us.1", "orders.eu.2"))
        item = "document.querySelector('#tail li[data-key=\"orders.eu.2\"]')"
        await page.wait_for(f"{item} !== null")
        assert await page.evaluate(f"{item}.dataset.seq") == "3"
        # only what the filter lets through, and nothing from before the page opened
        assert await page.evaluate("document.querySelectorAll('#tail li').length") == 1
        # the publish form: the event goes in and comes out of the tail
        await page.fill("#publish-key", "orders.eu.9")
        await page.fill("#publish-data", '{"from": "the page"}')
        await page.click("#publish button[type=submit]")
        published = "document.querySelector('#published').textContent"
        await page.wait_for(f"{published} === 'Published seq 4'")
        await page.wait_for("document.querySelector('#tail li[data-seq=\"4\"]') !== null")
        assert "the page" in await page.text("#tail li[data-seq='4']")
        assert page.errors == []
    assert keys(await api.read())[-1] == "orders.eu.9"


async def test_consumer_lag_moves_on_the_page(api: Api, engine: Engine, tmp_path: Path) -> None:
    await api.stream("orders")
    await api.consumer()
    lag = "document.querySelector('tr[data-consumer=billing] [data-field=lag]').textContent"
    async with Chromium(tmp_path / "profile") as page:
        await page.goto(engine.url + "/ui/#/streams/orders")
        await page.wait_for(f"{lag} === '0'")
        await api.publish("orders", msgs("a", "b", "c", "d", "e"))
        await page.wait_for(f"{lag} === '5'", timeout=15)
        got = await api.receive(batch_size=5)
        await api.ack([d["ack_id"] for d in got])
        await page.wait_for(f"{lag} === '0'", timeout=15)
        assert page.errors == []


async def test_redrive_from_the_page_delivers_the_dead_letter_again(
    api: Api, engine: Engine, tmp_path: Path
) -> None:
    await api.stream("orders")
    await api.consumer(max_deliver=1)
    await api.publish("orders", msgs("a", "b"))
    await api.nack([d["ack_id"] for d in await api.receive(batch_size=2)])
    await eventually(api.stats, lambda s: s["dead"] == 2)
    async with Chromium(tmp_path / "profile") as page:
        await page.goto(engine.url + "/ui/#/streams/orders/consumers/billing/dead")
        await page.wait_for("document.querySelectorAll('#dead tbody tr').length === 2")
        assert await page.text("#dead tr[data-seq='2'] pre") == "d1"  # the payload preview
        await page.click("#dead tr[data-seq='2'] button.redrive")
        if engine.name == "jetstream":
            # JetStream never delivers past max_deliver (docs/replay.md): the page says so
            # in the engine's words, and the dead letter stays where it was.
            await page.wait_for("document.querySelector('#result.error') !== null")
            assert (await page.text("#result")).startswith("Not implemented: redrive is not")
        else:
            await page.wait_for("document.querySelector('#result').textContent === 'Redriven: 1'")
            await page.wait_for("document.querySelectorAll('#dead tbody tr').length === 1")
        await page.click("#dead tr[data-seq='1'] button.discard")
        await page.wait_for("document.querySelector('#dead tr[data-seq=\"1\"]') === null")
        # the browser logs the 501 answer itself; the page threw nothing
        refused = [e for e in page.errors if "status of 501" in e and "/dead/redrive" in e]
        assert len(refused) == (1 if engine.name == "jetstream" else 0)
        assert [e for e in page.errors if e not in refused] == []
    if engine.name == "jetstream":
        assert await api.stats() == {"pending": 0, "in_flight": 0, "dead": 1, "skipped": 0}
        return
    got = await api.receive(wait_for=2000)
    assert keys(got) == ["b"]  # deliverable again; the discarded one is not
    assert await api.stats() == {"pending": 0, "in_flight": 1, "dead": 0, "skipped": 0}
