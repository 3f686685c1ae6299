"""Small shared helpers for the fault tests: bounded waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_until(condition: Callable[[], bool], timeout: float, what: str = "") -> None:
    """Poll ``condition`` every 5 ms until it holds; `TimeoutError` after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"not met within {timeout}s: {what or condition}")
        await asyncio.sleep(0.005)
