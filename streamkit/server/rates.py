"""Rates over the last minutes, sampled from the server's own counters.

A `RateHistory` copies the totals of some `Counter` series every
``interval`` seconds into a ring of ``window`` samples; a series' rates are
the differences between neighbouring samples, per second. The dashboard's
sparklines are drawn from them. Sampling costs one dict copy per counter per
interval, whatever the traffic; publish and ack handlers do nothing more than
bump their counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Mapping

from streamkit.server.metrics import Counter, Labels

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0
"""Seconds between samples."""
DEFAULT_WINDOW = 60
"""Rates kept per series: with the default interval, the last five minutes."""


class RateHistory:
    """Samples of named counters, taken by one background task (`start` / `stop`)."""

    def __init__(
        self,
        counters: Mapping[str, Counter],
        *,
        interval: float = DEFAULT_INTERVAL,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        if window < 1:
            raise ValueError("window must be at least 1")
        self.interval = interval
        self.window = window
        self._counters = dict(counters)
        # window + 1 samples give window rates; each sample: (monotonic time, totals by name).
        self._samples: deque[tuple[float, dict[str, dict[Labels, float]]]] = deque(
            maxlen=window + 1
        )
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        """Take one sample now (the background task calls this every ``interval``)."""
        totals = {name: counter.series() for name, counter in self._counters.items()}
        self._samples.append((time.monotonic(), totals))

    def rates(self, counter: str, labels: Labels) -> list[float]:
        """Per-second rates of one series, oldest first; at most ``window`` of them.

        The newest covers the time from the last sample until now (once that
        is half an interval, so that it is not a rate over a few
        milliseconds), and a publish shows up before the next sample.
        """
        points = [(t, totals[counter].get(labels, 0.0)) for t, totals in self._samples]
        now = time.monotonic()
        if points and now - points[-1][0] >= self.interval / 2:
            points.append((now, self._counters[counter].value(labels)))
        out: list[float] = []
        for (t0, v0), (t1, v1) in itertools.pairwise(points):
            elapsed = t1 - t0
            out.append(max(v1 - v0, 0.0) / elapsed if elapsed > 0 else 0.0)
        return out[-self.window :]

    def start(self) -> None:
        """Sample now and every ``interval`` seconds, in a task named ``streamkit-rates``."""
        if self._task is None:
            self.sample()
            self._task = asyncio.create_task(self._run(), name="streamkit-rates")

    async def stop(self) -> None:
        """Cancel the sampling task and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.sample()
