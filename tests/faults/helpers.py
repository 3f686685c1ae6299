"""Small shared helpers for the fault tests: bounded waits and whole-stream reads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from streamkit import AsyncClient, Event

PAGE = 1000
MAX_PAGES = 1000


async def wait_until(condition: Callable[[], bool], timeout: float, what: str = "") -> None:
    """Poll ``condition`` every 5 ms until it holds; `TimeoutError` after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"not met within {timeout}s: {what or condition}")
        await asyncio.sleep(0.005)


async def read_all(client: AsyncClient, stream: str) -> list[Event]:
    """Every stored event of ``stream`` by ``GET .../messages`` paging, in seq order."""
    events: list[Event] = []
    after = 0
    for _ in range(MAX_PAGES):
        page = await client.api.read(stream, limit=PAGE, after_seq=after)
        events += page
        if len(page) < PAGE:
            return events
        after = page[-1].seq or after
    raise AssertionError(f"{stream} has more than {PAGE * MAX_PAGES} events")
