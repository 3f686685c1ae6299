"""How a subscription's background workers wait out failures that may heal.

A long-running worker (a prefetcher's poll loop, the acker) never gives up on a
failure a retry can fix: it sleeps a capped, jittered, growing delay and tries
again, and reports the failures that will not heal instead of looping on them.
"""

from __future__ import annotations

import asyncio

from streamkit import errors
from streamkit._http.transport import backoff_delay, retry_after


def heals(exc: BaseException) -> bool:
    """True for failures that may pass if the same request is tried again later.

    Lost connections, timeouts, load shedding and 5xx answers heal (a server
    restarting produces all of them); so does a body that would not decode (a
    proxy's error page). A missing stream or consumer, a rejected key or a
    malformed request will fail the same way every time.
    """
    return isinstance(
        exc, (errors.TransportError, errors.Overloaded, errors.ServerError, errors.DecodeError)
    )


class Backoff:
    """Capped exponential delays with full jitter, for a loop retrying one thing."""

    def __init__(self, base: float = 0.05, cap: float = 2.0) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def reset(self) -> None:
        """The thing worked: the next failure starts from the shortest delay again."""
        self.failures = 0

    async def wait(self, failure: BaseException | None = None) -> None:
        """Sleep before the next attempt; at least the ``Retry-After`` (capped) that the
        ``failure`` carried, when the server said one."""
        delay = backoff_delay(self.failures, self.base, self.cap, retry_after(failure))
        self.failures += 1
        await asyncio.sleep(delay)
