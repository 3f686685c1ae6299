"""Every test here runs on both event loops `streamkit serve` may run on (asyncio's, uvloop's)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.event_loops import loop_factories


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """asyncio's loop and uvloop's, for the tests of this directory."""
    return loop_factories()
