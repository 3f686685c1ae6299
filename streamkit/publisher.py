"""Placeholder: being written (the Publisher issue). Interface only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from streamkit.api import API
from streamkit.models import Event

Callback = Callable[[Any], Awaitable[None] | None]


@dataclass
class PublisherConfig:
    """Publisher settings."""

    max_batch: int = 1000


class Publisher:
    """Background flush queue for one stream."""

    def __init__(self, api: API, stream: str, config: PublisherConfig) -> None:
        self.api, self.stream, self.config = api, stream, config

    async def publish(
        self,
        events: Sequence[Event],
        *,
        on_ack: Callback | None = None,
        on_nack: Callback | None = None,
        block: bool = True,
    ) -> None:
        raise NotImplementedError

    async def flush(self, timeout: float | None = None) -> None:
        raise NotImplementedError

    async def close(self, timeout: float | None = None) -> None:
        raise NotImplementedError
