"""A small JSON client for the conformance tests, and shared helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import pytest

from streamkit.server.store.base import Store

T = TypeVar("T")


@dataclass
class Engine:
    """A running server over one engine."""

    name: str
    url: str
    store: Store


class Api:
    """``await api.call("POST", "/api/streams", {"name": "x"})`` -> (status, json body)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, engine: str) -> None:
        self.session = session
        self.url = url
        self.engine = engine

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str | int] | None = None,
    ) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, json=body, params=params) as resp:
            assert resp.content_type == "application/json", await resp.text()
            return resp.status, await resp.json()

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """Like :meth:`call` but asserts a 2xx status and returns the body."""
        status, payload = await self.call(method, path, body, **kw)
        assert 200 <= status < 300, (status, payload)
        return payload

    async def stream(self, name: str = "orders", **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.ok("POST", "/api/streams", {"name": name, **options})
        return result

    async def consumer(
        self, stream: str = "orders", name: str = "billing", pattern: str = ">", **options: Any
    ) -> dict[str, Any]:
        body = {"name": name, "filter_key_pattern": pattern, "kind": "pull", **options}
        result: dict[str, Any] = await self.ok("POST", f"/api/streams/{stream}/consumers", body)
        return result

    async def publish(self, stream: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        result = await self.ok("POST", f"/api/streams/{stream}/messages", {"messages": messages})
        data: dict[str, Any] = result["data"]
        return data

    async def read(self, stream: str = "orders", **params: str | int) -> list[dict[str, Any]]:
        result = await self.ok("GET", f"/api/streams/{stream}/messages", params=params)
        data: list[dict[str, Any]] = result["data"]
        return data

    async def receive(
        self, stream: str = "orders", consumer: str = "billing", batch_size: int = 10, **params: int
    ) -> list[dict[str, Any]]:
        result = await self.ok(
            "GET",
            f"/api/streams/{stream}/consumers/{consumer}/receive",
            params={"batch_size": batch_size, **params},
        )
        data: list[dict[str, Any]] = result["data"]
        return data

    async def settle(
        self,
        verb: str,
        ids: list[str],
        stream: str = "orders",
        consumer: str = "billing",
        **extra: int,
    ) -> None:
        """POST ack / nack / extend and check the reply."""
        body = {"ack_ids": ids, **extra}
        path = f"/api/streams/{stream}/consumers/{consumer}/{verb}"
        assert await self.ok("POST", path, body) == {"success": True}

    async def ack(self, ids: list[str], stream: str = "orders", consumer: str = "billing") -> None:
        await self.settle("ack", ids, stream, consumer)

    async def nack(
        self, ids: list[str], stream: str = "orders", consumer: str = "billing", **extra: int
    ) -> None:
        await self.settle("nack", ids, stream, consumer, **extra)

    async def stats(self, stream: str = "orders", consumer: str = "billing") -> dict[str, int]:
        body = await self.ok("GET", f"/api/streams/{stream}/consumers/{consumer}")
        stats: dict[str, int] = body["stats"]
        return stats


def msgs(*keys: str, prefix: str = "d") -> list[dict[str, Any]]:
    """Messages with the given keys and data ``f"{prefix}{i}"``."""
    return [{"key": k, "data": f"{prefix}{i}"} for i, k in enumerate(keys)]


def keys(items: list[dict[str, Any]]) -> list[str]:
    """Keys of messages or deliveries."""
    return [i["message"]["key"] if "message" in i else i["key"] for i in items]


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool],
    *,
    timeout: float = 5.0,
    interval: float = 0.05,
) -> T:
    """Poll ``probe`` until ``check`` holds (bounded); returns the last value.

    For outcomes that follow a deadline (redelivery, dead-lettering, idle
    reaping): the engine may apply them a little after the deadline passes.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = await probe()
        if check(value) or loop.time() >= end:
            return value
        await asyncio.sleep(interval)


def expect_engine_gap(request: pytest.FixtureRequest, api: Api, engine: str, reason: str) -> None:
    """Mark the running test as a known, documented gap of ``engine`` (strict xfail)."""
    if api.engine == engine:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
