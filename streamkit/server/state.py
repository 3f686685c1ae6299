"""What a running app holds, under typed keys: the store, the metrics, the long-poll
limits, the configuration and the shutdown flag. Set once by ``create_app``."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from streamkit.server.limits import LongPolls
from streamkit.server.metrics import ServerMetrics
from streamkit.server.store.base import Store

STORE = web.AppKey("store", Store)
METRICS = web.AppKey("metrics", ServerMetrics)
LONG_POLLS = web.AppKey("long_polls", LongPolls)
CONFIG = web.AppKey("config", dict[str, Any])
"""Settings handlers read (``max_wait_ms``, ``max_body_bytes``, ``auth``, ...)."""
CLOSING = web.AppKey("closing", asyncio.Event)
"""Set when the server starts shutting down: live tails end after their current wait."""
