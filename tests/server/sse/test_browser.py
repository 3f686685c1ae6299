"""A real browser's EventSource against the live tail, with examples/sse_tail.html.

Runs headless Chromium when it is installed (``apt-get install chromium``;
``.ci/run`` installs it). Without it the tests skip locally and fail under
``CI=true``, so CI cannot go green by skipping.
"""

from __future__ import annotations

import asyncio
import html.parser
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.typedefs import Middleware

import streamkit
from streamkit import Event
from streamkit.protocol.wire import EVENT_STREAM
from streamkit.server import sse
from streamkit.server.app import create_app
from streamkit.server.state import STORE
from streamkit.server.store.base import MessageQuery
from streamkit.server.store.sqlite.store import SqliteStore
from tests.chromium import CHROMIUM, require_chromium

PAGE = Path(__file__).resolve().parents[3] / "examples" / "sse_tail.html"


@pytest.fixture(autouse=True)
def _needs_chromium() -> None:
    require_chromium()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Rendered(html.parser.HTMLParser):
    """The ``<li>`` items and the status of the page's DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[dict[str, str]] = []
        self.done = False
        self._in_item = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "li":
            self._in_item = True
            self._text = []
            self.items.append(values)
        if tag == "p" and values.get("id") == "status" and values.get("data-done") == "true":
            self.done = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "li" and self._in_item:
            self._in_item = False
            self.items[-1]["text"] = "".join(self._text)

    def handle_data(self, data: str) -> None:
        if self._in_item:
            self._text.append(data)


async def serve(tmp_path: Path, middlewares: list[Middleware]) -> tuple[web.AppRunner, str]:
    app = create_app(SqliteStore(tmp_path / "db"), sse_heartbeat=0.5)
    app.middlewares[:0] = middlewares  # outermost

    async def page(_: web.Request) -> web.Response:
        return web.Response(body=PAGE.read_bytes(), content_type="text/html")

    app.router.add_get("/sse_tail.html", page)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def dump_dom(url: str, profile: Path) -> Rendered:
    assert CHROMIUM is not None
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    rendered = Rendered()
    rendered.feed(out.decode())
    return rendered


@pytest.fixture
async def published(tmp_path: Path) -> AsyncIterator[str]:
    """A server with the page and six messages in ``orders``; yields its URL."""
    runner, url = await serve(tmp_path, [])
    try:
        async with streamkit.connect(url) as client:
            await client.create_stream("orders")
            await client.send(
                "orders",
                [Event({"i": i}, key=f"orders.{'eu' if i % 2 else 'us'}.{i}") for i in range(1, 7)],
            )
        yield url
    finally:
        await runner.cleanup()


async def test_event_source_renders_filtered_events(published: str, tmp_path: Path) -> None:
    page = f"{published}/sse_tail.html?stream=orders&key_pattern=orders.eu.>&from_seq=1&limit=3"
    dom = await dump_dom(page, tmp_path / "profile")
    assert dom.done
    assert [item["data-seq"] for item in dom.items] == ["1", "3", "5"]
    assert [item["data-last-event-id"] for item in dom.items] == ["1", "3", "5"]
    assert dom.items[0]["text"] == '1 orders.eu.1 {"i":1}'


async def test_event_source_reconnects_with_last_event_id(tmp_path: Path) -> None:
    """The first connection ends after one event; the browser resumes with Last-Event-ID."""
    seen: list[str] = []

    @web.middleware
    async def cut_first(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.endswith("/sse"):
            return await handler(request)
        seen.append(request.headers.get("Last-Event-ID", ""))
        if len(seen) > 1:
            return await handler(request)
        # First connection: what the server writes, cut short after message 2.
        store = request.app[STORE]
        first = await store.read_messages("orders", MessageQuery(limit=1, after_seq=1))
        response = web.StreamResponse(headers={"Content-Type": EVENT_STREAM})
        await response.prepare(request)
        await response.write(sse.preamble(1, 10) + sse.encode_messages(first, named=False))
        return response

    runner, url = await serve(tmp_path, [cut_first])
    try:
        async with streamkit.connect(url) as client:
            await client.create_stream("orders")
            await client.send("orders", [Event({"i": i}, key=f"k.{i}") for i in range(1, 6)])
        page = f"{url}/sse_tail.html?stream=orders&from_seq=2&limit=4"
        dom = await dump_dom(page, tmp_path / "profile")
    finally:
        await runner.cleanup()
    assert dom.done
    assert [item["data-seq"] for item in dom.items] == ["2", "3", "4", "5"]
    assert seen[:2] == ["", "2"]  # the reconnect carried the last id it saw
