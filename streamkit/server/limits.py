"""Caps on long-polls, so that one client cannot hold every connection the server has.

A receive or read that waits (``wait_for`` > 0) holds a slot until it returns:
at most ``max_waiting`` per consumer (what the consumer object reports) and at
most ``max_long_polls`` in all. Past either, the request is refused at once
with 429 and ``Retry-After`` instead of queueing; requests that do not wait
are never counted or refused.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from streamkit.server.responses import ErrorResponse

DEFAULT_MAX_WAITING = 20
"""Long-polls allowed to wait on one consumer at once (``max_waiting``)."""

DEFAULT_MAX_LONG_POLLS = 1000
"""Long-polls allowed to wait on the whole server at once."""

RETRY_AFTER_S = 1


class LongPolls:
    """Counts waiting long-polls per key (a consumer, a stream) and in total."""

    def __init__(
        self,
        max_waiting: int = DEFAULT_MAX_WAITING,
        max_long_polls: int = DEFAULT_MAX_LONG_POLLS,
    ) -> None:
        if max_waiting < 1 or max_long_polls < 1:
            raise ValueError("long-poll limits must be at least 1")
        self.max_waiting = max_waiting
        self.max_long_polls = max_long_polls
        self._by_key: dict[Hashable, int] = {}
        self.total = 0

    def waiting(self, key: Hashable) -> int:
        """Long-polls waiting on ``key`` now."""
        return self._by_key.get(key, 0)

    @contextmanager
    def hold(self, key: Hashable, wait_ms: int, *, per_key: bool = True) -> Iterator[None]:
        """Hold a slot for the duration of the block, or raise a 429 `ErrorResponse`.

        ``per_key=False`` applies only the server-wide cap (reads of a stream).
        """
        if wait_ms <= 0:
            yield
            return
        if self.total >= self.max_long_polls:
            raise _too_many(f"{self.max_long_polls} long-polls are already waiting on the server")
        count = self._by_key.get(key, 0)
        if per_key and count >= self.max_waiting:
            raise _too_many(
                f"{self.max_waiting} receives are already waiting on this consumer (max_waiting)"
            )
        self._by_key[key] = count + 1
        self.total += 1
        try:
            yield
        finally:
            self.total -= 1
            left = self._by_key[key] - 1
            if left:
                self._by_key[key] = left
            else:
                del self._by_key[key]


def _too_many(why: str) -> ErrorResponse:
    return ErrorResponse(
        429,
        f"Too many requests: {why}; retry later",
        "too_many_waiting",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
