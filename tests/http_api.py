"""A small JSON client for the HTTP API, shared by the server and conformance suites."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp


class Api:
    """``await api.call("POST", "/api/streams", {"name": "x"})`` -> (status, json body)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, engine: str = "sqlite") -> None:
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
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> tuple[int, Any]:
        async with self.session.request(
            method, self.url + path, json=body, params=params, headers=headers, data=data
        ) as resp:
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
