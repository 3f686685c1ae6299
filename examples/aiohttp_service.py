"""An aiohttp.web service that publishes events from its request handlers.

The streamkit client is opened once, in a ``cleanup_ctx`` (aiohttp's lifespan
hook): ``async with connect()`` around the app's life, so every request shares
one connection pool and one background publisher, and shutdown flushes what
was published. ::

    STREAMKIT_URL=http://localhost:7376 python examples/aiohttp_service.py serve
    curl -X POST localhost:8080/orders -d '{"id": 7, "region": "eu", "total": 12.5}'

Without ``serve`` it starts on a free port, posts a few orders to itself and stops.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

import streamkit
from streamkit import AsyncClient, Event, Nack

STREAMKIT = web.AppKey("streamkit", AsyncClient)
STREAM = "orders"


async def place_order(request: web.Request) -> web.Response:
    """``POST /orders``: publish the order and answer once the server stored it."""
    order = await request.json()
    if not isinstance(order, dict) or not {"id", "region"} <= order.keys():
        raise web.HTTPBadRequest(text='an order is a JSON object with "id" and "region"')
    try:
        event = Event(order, key=f"orders.{order['region']}.{order['id']}")
    except ValueError as exc:  # a region or id that cannot be part of a key
        raise web.HTTPBadRequest(text=str(exc)) from None
    await request.app[STREAMKIT].publish(STREAM, event)  # queued, batched with other requests
    try:
        ack = await event.wait_for_ack(timeout=10)
    except (Nack, asyncio.TimeoutError) as exc:
        raise web.HTTPServiceUnavailable(text=f"order not stored: {exc}") from None
    return web.json_response({"seq": ack.seq, "event_id": ack.id}, status=201)


async def recent_orders(request: web.Request) -> web.Response:
    """``GET /orders``: the ten newest orders, newest first."""
    client = request.app[STREAMKIT]
    events = await client.get(STREAM, max_count=10, direction=streamkit.BACKWARD)
    return web.json_response([{"seq": e.seq, "key": e.key, "order": e.json()} for e in events])


def create_app(url: str) -> web.Application:
    """The service, publishing to the streamkit server at ``url``."""

    async def streamkit_client(app: web.Application) -> AsyncIterator[None]:
        async with streamkit.connect(url) as client:  # closed (and flushed) on shutdown
            await client.create_stream(STREAM, exist_ok=True)
            app[STREAMKIT] = client
            yield

    app = web.Application()
    app.cleanup_ctx.append(streamkit_client)
    app.router.add_post("/orders", place_order)
    app.router.add_get("/orders", recent_orders)
    return app


async def main(url: str, orders: int = 3) -> list[dict[str, Any]]:
    """Start the service on a free port, post ``orders`` orders, list them, stop."""
    runner = web.AppRunner(create_app(url))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"
        print("service on", base)
        async with aiohttp.ClientSession() as http:
            for i in range(1, orders + 1):
                order = {"id": i, "region": "eu" if i % 2 else "us", "total": 10.0 * i}
                async with http.post(f"{base}/orders", json=order) as response:
                    print("POST /orders ->", response.status, await response.json())
            async with http.get(f"{base}/orders") as response:
                recent: list[dict[str, Any]] = await response.json()
        print("GET /orders ->", [r["key"] for r in recent])
        return recent
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    streamkit_url = os.environ.get("STREAMKIT_URL", "http://localhost:7376")
    if sys.argv[1:] == ["serve"]:
        web.run_app(create_app(streamkit_url), port=8080)
    else:
        asyncio.run(main(streamkit_url))
