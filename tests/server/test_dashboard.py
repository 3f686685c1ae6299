"""The dashboard beside the engines: its files, auth in the browser, 1,000 streams, rates.

What the page shows from the store runs on both engines in
``tests/conformance/test_dashboard.py``; these tests are about the server's
own part (files, auth, paging) and need only SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from streamkit.server.dashboard import UI_DIR
from streamkit.server.metrics import Counter
from streamkit.server.rates import RateHistory
from streamkit.testing import ServerHandle, run_server
from tests.chromium import Chromium
from tests.http_api import Api, msgs
from tests.server_process import ServerProcess

KEY = "s3cret-key"


@pytest_asyncio.fixture
async def secured(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    """A server with an API key."""
    async with run_server(tmp_path / "db", api_key=KEY, dashboard_interval=0.2) as server:
        yield server


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


# -- files and auth over plain HTTP ------------------------------------------------------


async def test_root_redirects_and_files_come_from_the_package(
    secured: ServerHandle, http: aiohttp.ClientSession
) -> None:
    for path in ("/", "/ui"):
        async with http.get(secured.url + path, allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (302, "/ui/")
    async with http.get(secured.url + "/ui/") as r:
        assert r.status == 200  # no key needed: the page holds no data
        assert await r.read() == (UI_DIR / "index.html").read_bytes()
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    for name, media in (("app.js", "javascript"), ("app.css", "text/css")):
        async with http.get(f"{secured.url}/ui/{name}") as r:
            assert r.status == 200
            assert media in r.headers["Content-Type"]
            assert await r.read() == (UI_DIR / name).read_bytes()
    async with http.get(secured.url + "/ui/missing.js") as r:
        assert r.status == 404


async def test_no_data_without_the_key(secured: ServerHandle, http: aiohttp.ClientSession) -> None:
    bearer = {"Authorization": f"Bearer {KEY}"}
    async with http.post(secured.url + "/api/streams", json={"name": "orders"}, headers=bearer):
        pass
    paths = ("/api/dashboard", "/api/streams/orders/messages/sse", "/api/streams")
    for path in paths:
        async with http.get(secured.url + path) as r:
            assert r.status == 401, path
        async with http.get(secured.url + path, headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 401, path
    # a path that only looks like the pages' does not skip auth
    raw = secured.url + "/ui/%2e%2e/api/dashboard"
    async with http.get(raw) as r:
        assert r.status in (401, 404)
        assert b"orders" not in await r.read()
    async with http.get(secured.url + "/api/dashboard", headers=bearer) as r:
        assert r.status == 200
        assert [s["name"] for s in (await r.json())["streams"]] == ["orders"]


async def test_the_server_process_serves_the_dashboard_and_stops_cleanly(
    server_process: ServerProcess, http: aiohttp.ClientSession
) -> None:
    await server_process.astart()
    async with http.get(server_process.url + "/") as r:  # follows the redirect
        assert (r.status, r.url.path) == (200, "/ui/")
        assert b'<script src="app.js"' in await r.read()
    async with http.get(server_process.url + "/api/dashboard") as r:
        assert r.status == 200
    # SIGTERM: the rate sampling task is cancelled with the rest, and the exit is clean
    assert await asyncio.to_thread(server_process.stop) == 0


# -- auth in the browser ---------------------------------------------------------------


async def test_a_wrong_key_shows_the_401_message_and_the_right_one_is_kept(
    secured: ServerHandle, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    api = Api(http, secured.url)
    http.headers["Authorization"] = f"Bearer {KEY}"
    await api.stream("orders")
    async with Chromium(tmp_path / "profile") as page:
        await page.goto(secured.url + "/ui/")
        await page.wait_for("!document.querySelector('#auth').hidden")
        assert "needs an API key (401" in await page.text("#auth-message")
        await page.fill("#key", "wrong")
        await page.click("#key-form button")
        message = "document.querySelector('#auth-message').textContent"
        await page.wait_for(f"{message}.includes('refused this API key (401 Unauthorized)')")
        assert await page.evaluate("document.querySelector('#streams')") is None  # no data
        await page.fill("#key", KEY)
        await page.click("#key-form button")
        await page.wait_for("document.querySelector('tr[data-stream=orders]') !== null")
        assert await page.evaluate("document.querySelector('#auth').hidden")
        # kept for the tab: a reload asks nothing, and the live tail sends it too
        await page.goto(secured.url + "/ui/#/streams/orders/tail")
        await page.wait_for("document.querySelector('#tail-state').textContent === 'live'")
        await api.publish("orders", msgs("orders.eu.1"))
        await page.wait_for("document.querySelector('#tail li[data-seq=\"1\"]') !== null")
        assert await page.evaluate(f"sessionStorage.getItem('streamkit.apiKey') === '{KEY}'")
        # "Forget key": gone from the tab, and the page asks again
        await page.click("#forget")
        await page.wait_for("!document.querySelector('#auth').hidden")
        assert await page.evaluate("sessionStorage.getItem('streamkit.apiKey')") is None
        assert "needs an API key (401" in await page.text("#auth-message")
        # the browser logs the refused loads (no key, wrong key, forgotten); nothing else
        unexpected = [e for e in page.errors if "status of 401" not in e]
        assert unexpected == []
        assert len(page.errors) == 3


# -- 1,000 streams ----------------------------------------------------------------------------


async def test_a_thousand_streams_are_paged_and_filtered(tmp_path: Path) -> None:
    async with (
        run_server(tmp_path / "db") as server,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
    ):
        api = Api(http, server.url)
        names = [f"s{i:04d}" for i in range(1000)]
        for start in range(0, len(names), 50):  # bounded: 50 requests at a time
            await asyncio.gather(*(api.stream(n) for n in names[start : start + 50]))
        await api.publish("s0999", msgs("a"))

        first = await api.ok("GET", "/api/dashboard")
        assert (first["total"], len(first["streams"])) == (1000, 50)
        assert [s["name"] for s in first["streams"]][:2] == ["s0000", "s0001"]
        last = await api.ok("GET", "/api/dashboard", params={"offset": 950, "limit": 200})
        assert [s["name"] for s in last["streams"]][-1] == "s0999"
        assert len(last["streams"]) == 50
        only = await api.ok("GET", "/api/dashboard", params={"q": "s099"})
        assert [s["name"] for s in only["streams"]] == [f"s0{i}" for i in range(990, 1000)]

        async with Chromium(tmp_path / "profile") as page:
            await page.goto(server.url + "/ui/")
            await page.wait_for("document.querySelectorAll('#streams tbody tr').length === 50")
            assert await page.text("#page-info") == "1-50 of 1000"
            await page.click("#next")
            info = "document.querySelector('#page-info').textContent"
            await page.wait_for(f"{info} === '51-100 of 1000'")
            assert await page.text("#streams tbody tr td a") == "s0050"
            await page.fill("#filter", "s0999")
            await page.wait_for(f"{info} === '1-1 of 1'")
            row = "#streams tr[data-stream=s0999] [data-field=messages]"
            assert await page.text(row) == "1"
            assert page.errors == []


# -- rates ------------------------------------------------------------------------------


async def test_rates_are_per_second_differences_of_the_samples() -> None:
    counter = Counter("c", "test", ["stream"])
    history = RateHistory({"c": counter}, interval=0.05, window=3)
    assert history.rates("c", ("a",)) == []  # nothing sampled yet
    history.sample()
    for n in (10, 0, 5, 5):
        counter.inc(n, ("a",))
        await asyncio.sleep(0.06)
        history.sample()
    rates = history.rates("c", ("a",))
    assert len(rates) == 3  # the window: the oldest interval has gone
    assert rates[0] == 0
    assert all(r > 0 for r in rates[1:])
    assert history.rates("c", ("b",)) == [0.0, 0.0, 0.0]


async def test_sampling_runs_in_a_named_task_that_stop_ends() -> None:
    counter = Counter("c", "test")
    history = RateHistory({"c": counter}, interval=0.01)
    history.start()
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert "streamkit-rates" in names
    await asyncio.sleep(0.05)
    await history.stop()
    assert "streamkit-rates" not in {t.get_name() for t in asyncio.all_tasks()}
    with pytest.raises(ValueError):
        RateHistory({"c": counter}, interval=0)


async def test_the_rates_counters_are_in_the_metrics_exposition(
    secured: ServerHandle, http: aiohttp.ClientSession
) -> None:
    http.headers["Authorization"] = f"Bearer {KEY}"
    api = Api(http, secured.url)
    await api.stream("orders")
    await api.consumer()
    await api.publish("orders", msgs("a", "b", "c"))
    got = await api.receive(batch_size=2)
    await api.ack([d["ack_id"] for d in got])
    async with http.get(secured.url + "/metrics") as r:
        text = await r.text()
    lines = set(text.splitlines())
    assert 'streamkit_stream_messages_published_total{stream="orders"} 3' in lines
    assert 'streamkit_consumer_messages_acked_total{stream="orders",consumer="billing"} 2' in lines
    assert "# TYPE streamkit_consumer_messages_redelivered_total counter" in lines


# -- bad input on the pages ------------------------------------------------------------------


async def test_bad_input_on_the_pages_gets_the_servers_message(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with run_server(tmp_path / "db") as server:
        api = Api(http, server.url)
        await api.stream("orders")
        await api.consumer(max_deliver=1)
        await api.publish("orders", msgs("a", "b", "c"))
        await api.nack([d["ack_id"] for d in await api.receive(batch_size=3)])
        async with Chromium(tmp_path / "profile") as page:
            await page.goto(server.url + "/ui/#/streams/orders/tail?key_pattern=orders..x")
            state = "document.querySelector('#tail-state')"
            await page.wait_for(f"{state}.className === 'error'")
            assert "Invalid parameter `key_pattern`" in await page.text("#tail-state")
            await page.goto(server.url + "/ui/#/streams/orders/tail")
            await page.wait_for(f"{state}.textContent === 'live'")
            await page.fill("#publish-key", "bad key!")
            await page.click("#publish button[type=submit]")
            await page.wait_for("document.querySelector('#published.error') !== null")
            shown = await page.text("#published")
            assert shown.startswith("Validation failed; messages[0].key: ")
            # "Redrive all" from the dead letters page: all three deliverable again
            await page.goto(server.url + "/ui/#/streams/orders/consumers/billing/dead")
            await page.wait_for("document.querySelectorAll('#dead tbody tr').length === 3")
            await page.click("#redrive-all")
            await page.wait_for("document.querySelector('#no-dead') !== null")
            assert await page.text("#result") == "Redriven: 3"
        # the browser logged the two refused requests (400, 422); the page threw nothing
        assert len(page.errors) == 2
        assert all("status of 4" in e for e in page.errors)
        assert [d["message"]["key"] for d in await api.receive(batch_size=10)] == ["a", "b", "c"]
        assert [m["key"] for m in await api.read()] == ["a", "b", "c"]  # the bad one: not stored


async def test_an_open_page_polls_once_every_few_seconds(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """No polling storm: the streams page asks once per 3 s, whatever it shows."""
    async with run_server(tmp_path / "db") as server:
        api = Api(http, server.url)
        for name in ("orders", "payments", "audit"):
            await api.stream(name)
        async with Chromium(tmp_path / "profile") as page:
            await page.goto(server.url + "/ui/")
            await page.wait_for("document.querySelectorAll('#streams tbody tr').length === 3")
            await asyncio.sleep(7)  # bounded: long enough for two more polls
        async with http.get(server.url + "/metrics") as r:
            text = await r.text()
    polls = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("streamkit_http_requests_total{") and 'route="/api/dashboard"' in line
    )
    others = [
        line
        for line in text.splitlines()
        if line.startswith("streamkit_http_requests_total{")
        and 'route="/api/' in line
        and 'route="/api/dashboard"' not in line
        and 'method="POST",route="/api/streams"' not in line  # the test's own set-up
    ]
    assert 2 <= polls <= 4  # at 0, 3 and 6 s; one request each, never one per stream
    assert others == []  # nothing else of the API was asked for
