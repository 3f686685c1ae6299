"""`Leaser`: the deliveries a subscription holds, kept from expiring on the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable, Mapping

from streamkit._http.api import API
from streamkit.errors import StreamkitError
from streamkit.protocol.wire import MAX_ACK_IDS
from streamkit.subscriber._attachment import Attachment

log = logging.getLogger(__name__)

MIN_SNOOZE = 0.01
"""Shortest pause between renewal cycles, in seconds."""


class Leaser:
    """Holds every unsettled delivery of a subscription and renews their ack deadlines.

    Its leases (per stream, ack id → the ``loop.time()`` it arrived at) are the
    one record of what the subscription holds, prefetched or handed out; counts
    are derived from them. No object per lease, and no reference to the events:
    a subscription receives thousands of events per second, and each object
    that lives as long as its lease is work for the garbage collector.
    Deliveries are added as they arrive and removed as they are settled (by the
    `Acker`, through which every ack and nack goes) or given back. Each cycle
    the task sends one ``extend`` request per stream for all of its leases,
    then sleeps a random time below 90% of the shortest ack deadline, so every
    lease is renewed before it can expire and many clients do not renew in
    lockstep. A lease held longer than ``max_lease`` seconds is dropped (no
    longer renewed), so a handler that hangs cannot hold a message forever.

    ``attachments`` names each stream's consumer and how long its leases last
    without renewal; ``on_dropped(ack_ids)`` hears of the leases dropped at
    ``max_lease``.
    """

    def __init__(
        self,
        api: API,
        attachments: Mapping[str, Attachment],
        *,
        max_lease: float = 3600.0,
        on_dropped: Callable[[list[str]], None] | None = None,
        name: str = "streamkit-leaser",
    ) -> None:
        self.api = api
        self.attachments = attachments
        self.max_lease = max_lease
        self.on_dropped = on_dropped
        self.name = name
        self._leases: dict[str, dict[str, float]] = {stream: {} for stream in attachments}
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def __len__(self) -> int:
        return sum(map(len, self._leases.values()))

    def leases(self, stream: str) -> Mapping[str, float]:
        """``stream``'s leases now, ack id → when it arrived: a live, read-only view."""
        return self._leases[stream]

    @property
    def deadline(self) -> float:
        """The shortest lease deadline of the streams, in seconds."""
        return min((a.lease_deadline for a in self.attachments.values()), default=30.0)

    def add(self, stream: str, ack_ids: Iterable[str], now: float) -> None:
        """Lease freshly received deliveries of ``stream``, at ``now``."""
        self._leases[stream].update(dict.fromkeys(ack_ids, now))

    def remove(self, stream: str, ack_id: str) -> bool:
        """Stop leasing a delivery (it was settled); False if it was not leased."""
        return self._leases[stream].pop(ack_id, None) is not None

    def pop_all(self) -> dict[str, list[str]]:
        """Stop leasing everything and return the ack ids held, per stream."""
        held = {stream: list(leases) for stream, leases in self._leases.items() if leases}
        for leases in self._leases.values():
            leases.clear()
        return held

    # Lifecycle.

    def start(self) -> None:
        """Start the renewal task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop renewing (the leases stay, for the subscription to settle)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # The task.

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            deadline = self.deadline
            self._drop_expired(started)
            if len(self):
                await self._renew(timeout=deadline * 0.9)
            snooze = random.uniform(MIN_SNOOZE, max(MIN_SNOOZE, deadline * 0.9))
            await asyncio.sleep(max(0.0, started + snooze - loop.time()))

    def _drop_expired(self, now: float) -> None:
        cutoff = now - self.max_lease
        for leases in self._leases.values():
            expired = [ack_id for ack_id, leased_at in leases.items() if leased_at < cutoff]
            if expired:
                log.warning(
                    "%s: dropping %d leases held over max_lease=%ss; they will be redelivered",
                    self.name,
                    len(expired),
                    self.max_lease,
                )
                for ack_id in expired:
                    del leases[ack_id]
                if self.on_dropped is not None:
                    self.on_dropped(expired)

    async def _renew(self, timeout: float) -> None:
        requests = [
            self._extend(stream, ids[i : i + MAX_ACK_IDS])
            for stream, leases in self._leases.items()
            if (ids := list(leases))
            for i in range(0, len(ids), MAX_ACK_IDS)
        ]
        # asyncio.wait, not wait_for: before Python 3.12, wait_for can swallow a
        # cancellation that lands as the requests finish, and stop() would hang.
        renewal = asyncio.gather(*requests)
        try:
            done, _ = await asyncio.wait({renewal}, timeout=timeout)
        finally:
            renewal.cancel()
        if not done:
            log.warning("%s: lease renewal took over %.3fs", self.name, timeout)
            await asyncio.wait({renewal})

    async def _extend(self, stream: str, ack_ids: list[str]) -> None:
        try:
            await self.api.extend(stream, self.attachments[stream].consumer, ack_ids)
        except Exception as exc:
            # The next cycle tries again; the prefetcher reports what will not heal.
            log.log(
                logging.DEBUG if self._failing else logging.WARNING,
                "%s: renewing %d leases on %r failed: %r",
                self.name,
                len(ack_ids),
                stream,
                exc,
                exc_info=not isinstance(exc, StreamkitError),
            )
            self._failing = True
        else:
            self._failing = False
