"""A small JSON client for the conformance tests, and shared helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from streamkit.server.store.base import Store
from tests.http_api import Api

T = TypeVar("T")


@dataclass
class Engine:
    """A running server over one engine."""

    name: str
    url: str
    store: Store


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
