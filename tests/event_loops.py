"""The event loops `streamkit serve` may run on: asyncio's, and uvloop's when installed.

uvloop's transports are not asyncio's classes, so tests of connection handling
run on both (`loop_factories`, for pytest-asyncio's ``pytest_asyncio_loop_factories``
hook).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest


def new_uvloop() -> asyncio.AbstractEventLoop:
    """A new uvloop loop; skips the test (fails it under ``CI=true``) without uvloop."""
    try:
        import uvloop
    except ImportError:
        reason = "uvloop is not installed (the fast extra)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " - required under CI=true", pytrace=False)
        pytest.skip(reason)
    return uvloop.new_event_loop()


def loop_factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Each loop the server may run on, by name (the test ids)."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": new_uvloop}
