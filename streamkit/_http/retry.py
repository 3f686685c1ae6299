"""The one retry policy: which failures are worth another try, and how long to wait.

Every loop that retries (an idempotent request in the transport, the
publisher's batches, a subscription's workers, the live tail) asks
`retriable` and waits with `Backoff` or `backoff_delay`; none keeps a list
of its own.
"""

from __future__ import annotations

import asyncio
import random

from streamkit import errors


def retriable(exc: BaseException, *, resend_safe: bool = False) -> bool:
    """True when sending the same request again may succeed.

    The error class says so for every request (``StreamkitError.retriable``):
    lost connections, timeouts, load shedding, a failing gateway. With
    ``resend_safe`` the caller's requests are safe to repeat even after a
    failure that may have been applied (published events carry ids the server
    dedupes, settles name their deliveries), so every 5xx counts too, and so
    does an answer that would not decode (a proxy's error page) for the callers
    that do not handle that one themselves.
    """
    if not isinstance(exc, errors.StreamkitError):
        return False
    if exc.retriable:
        return True
    return resend_safe and isinstance(exc, (errors.ServerError, errors.DecodeError))


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter for the ``attempt``-th retry (0-based);
    at least the server's ``retry_after``, both capped at ``cap``."""
    delay = random.uniform(0, min(cap, base * (2**attempt)))
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def retry_after(exc: BaseException | None) -> float | None:
    """The seconds a load-shedding server asked for in ``Retry-After``, if any."""
    return exc.retry_after if isinstance(exc, errors.APIError) else None


class Backoff:
    """Capped exponential delays with full jitter, for a loop retrying one thing."""

    def __init__(self, base: float = 0.05, cap: float = 2.0) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def reset(self) -> None:
        """The thing worked: the next failure starts from the shortest delay again."""
        self.failures = 0

    def delay(self, failure: BaseException | None = None) -> float:
        """The next delay, counting a failure: at least the ``Retry-After`` (capped)
        that the ``failure`` carried, when the server said one."""
        delay = backoff_delay(self.failures, self.base, self.cap, retry_after(failure))
        self.failures += 1
        return delay

    async def wait(self, failure: BaseException | None = None) -> None:
        """Sleep the next delay before another attempt."""
        await asyncio.sleep(self.delay(failure))
