"""The dashboard: static pages under ``/ui/`` and the JSON they poll.

The pages (``streamkit/server/ui/``: HTML, CSS and JS, no build step, no
CDN) are public, because they hold no data; every byte of data they show
comes from API routes behind the same bearer auth as the rest (the page asks
for the key once and keeps it in ``sessionStorage``). ``GET /api/dashboard``
answers one poll of an open page: a page of streams with their stats and
publish rates, and, for one stream, its consumers with lag and ack rates.
Rates are sampled from the server's own counters (see `rates`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from streamkit.protocol.keys import MAX_NAME_LENGTH
from streamkit.server import validation
from streamkit.server.rates import RateHistory
from streamkit.server.responses import json_response
from streamkit.server.state import METRICS, STORE
from streamkit.server.store.base import (
    ConsumerRecord,
    MessageQuery,
    Store,
    StoreNotFound,
    StreamRecord,
)

UI_DIR = Path(__file__).resolve().parent / "ui"
"""The page's files, shipped in the package."""
PREFIX = "/ui/"
PAGES = frozenset({("get", "/"), ("get", "/ui"), ("get", PREFIX)})
"""(method, path) of the page routes beside the route table (static files aside)."""
DEFAULT_PAGE = 50
MAX_PAGE = 200
"""Most streams one poll returns; the page pages and filters past that."""

RATES = web.AppKey("dashboard_rates", RateHistory)

_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def is_page(request: web.Request) -> bool:
    """Whether the router matched ``request`` to one of the dashboard's static files
    (served without auth): decided by the route found, not by the path's spelling."""
    route = request.match_info.route
    if route.handler in (_to_pages, _index):
        return True
    resource = route.resource
    return isinstance(resource, web.StaticResource) and resource.canonical == PREFIX.rstrip("/")


def add_pages(app: web.Application, *, interval: float, window: int) -> None:
    """Serve the pages (``/`` redirects to ``/ui/``) and sample the rates they show."""
    server_metrics = app[METRICS]
    history = RateHistory(
        {
            "published": server_metrics.stream_published,
            "acked": server_metrics.consumer_acked,
        },
        interval=interval,
        window=window,
    )
    app[RATES] = history

    async def sampling(_: web.Application) -> AsyncIterator[None]:
        history.start()
        yield
        await history.stop()

    app.cleanup_ctx.append(sampling)
    app.router.add_get("/", _to_pages)
    app.router.add_get("/ui", _to_pages)
    app.router.add_get(PREFIX, _index)
    app.router.add_static(PREFIX, UI_DIR)


async def _to_pages(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(PREFIX)


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(UI_DIR / "index.html", headers=_PAGE_HEADERS)


async def overview(request: web.Request) -> web.Response:
    """One poll of the dashboard: ``?q`` filters stream names (a substring, any case),
    ``offset``/``limit`` page them; ``stream`` adds that stream (``stream``) and its
    consumers (``consumers``), both ``null`` without it."""
    query = request.query
    text = query.get("q", "")
    if len(text) > MAX_NAME_LENGTH:
        raise validation.BadParam("q", f"at most {MAX_NAME_LENGTH} characters")
    offset = validation.int_param(query, "offset", 0, minimum=0)
    limit = validation.int_param(query, "limit", DEFAULT_PAGE, minimum=1, maximum=MAX_PAGE)
    store = request.app[STORE]
    history = request.app[RATES]
    consumers: list[dict[str, Any]] | None = None
    selected_row: dict[str, Any] | None = None
    if selected := query.get("stream"):
        stream = await store.get_stream(selected)
        consumers = await _consumer_rows(request, store, stream)
        selected_row = await _stream_row(store, history, stream)
    needle = text.lower()
    matched = sorted(
        (s for s in await store.list_streams() if needle in s.name.lower()),
        key=lambda s: s.name,
    )
    page = matched[offset : offset + limit]
    rows = await asyncio.gather(*(_stream_row(store, history, s) for s in page))
    return json_response(
        {
            "interval_ms": round(history.interval * 1000),
            "total": len(matched),
            "offset": offset,
            "limit": limit,
            "streams": [row for row in rows if row is not None],
            "stream": selected_row,
            "consumers": consumers,
        }
    )


def _summed(series: Sequence[list[float]]) -> list[float]:
    """Rates of one thing counted under several label values (a name and an id)."""
    return [sum(values) for values in zip(*series, strict=False)] if series else []


async def _stream_row(store: Store, history: RateHistory, s: StreamRecord) -> dict[str, Any] | None:
    try:
        first = await store.read_messages(s.id, MessageQuery(limit=1))
        last = await store.read_messages(s.id, MessageQuery(limit=1, descending=True))
    except StoreNotFound:  # deleted since it was listed
        return None
    return {
        "id": s.id,
        "name": s.name,
        "message_count": s.stats.message_count,
        "consumer_count": s.stats.consumer_count,
        "storage_size": s.stats.storage_size,
        "first_seq": first[0]["seq"] if first else None,
        "last_seq": last[0]["seq"] if last else None,
        "publish_rate": _summed([history.rates("published", (ref,)) for ref in (s.name, s.id)]),
    }


async def _consumer_rows(
    request: web.Request, store: Store, s: StreamRecord
) -> list[dict[str, Any]]:
    history = request.app[RATES]
    redelivered = request.app[METRICS].consumer_redelivered
    found = await asyncio.gather(
        *(store.get_consumer(s.id, c.id) for c in await store.list_consumers(s.id)),
        return_exceptions=True,
    )
    rows: list[dict[str, Any]] = []
    for record in found:
        if isinstance(record, StoreNotFound):  # deleted since it was listed
            continue
        if isinstance(record, BaseException):
            raise record
        labels = _labels(s, record)
        stats = record.stats
        pending, in_flight, dead = (
            (stats.pending, stats.in_flight, stats.dead) if stats else (0, 0, 0)
        )
        rows.append(
            {
                "id": record.id,
                "name": record.name,
                "filter_key_pattern": record.filter_key_pattern,
                "ephemeral": record.ephemeral,
                "max_deliver": record.max_deliver,
                "lag": pending + in_flight,
                "pending": pending,
                "in_flight": in_flight,
                "dead": dead,
                "redelivered": int(sum(redelivered.value(lb) for lb in labels)),
                "ack_rate": _summed([history.rates("acked", lb) for lb in labels]),
            }
        )
    rows.sort(key=lambda row: row["name"])
    return rows


def _labels(s: StreamRecord, c: ConsumerRecord) -> list[tuple[str, str]]:
    """The label values a request may have counted this consumer under (names or ids)."""
    return [(sref, cref) for sref in (s.name, s.id) for cref in (c.name, c.id)]
