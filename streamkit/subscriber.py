"""Placeholder: being written (the Subscriber issue). Interface only."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from streamkit.api import API


class Subscription:
    """Async iterator of ackable events."""

    def __init__(self, api: API, streams: Sequence[str], *, on_close: Callable[[Any], None], **options: Any) -> None:
        self.api, self.streams, self.options, self._on_close = api, streams, options, on_close

    async def aclose(self) -> None:
        raise NotImplementedError
