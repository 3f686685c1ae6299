"""`Leaser`: the deliveries a subscription holds, kept from expiring on the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable, KeysView, Mapping
from typing import cast

from streamkit._http.api import API
from streamkit.errors import StreamkitError
from streamkit.models import Delivery, Event
from streamkit.protocol.wire import MAX_ACK_IDS
from streamkit.subscriber._attachment import Attachment

log = logging.getLogger(__name__)

MIN_SNOOZE = 0.01
"""Shortest pause between renewal cycles, in seconds."""


class Leaser:
    """Holds every unsettled delivery of a subscription and renews their ack deadlines.

    Its leases (ack id → the received `Event`, whose `Delivery` says since when
    it is held) are the one record of what the subscription holds, prefetched
    or handed out; counts are derived from them. No object per lease: a
    subscription receives thousands of events per second, and each object
    that lives as long as its event is work for the garbage collector. Deliveries
    are added as they arrive and removed as they are settled (by the `Acker`,
    through which every ack and nack goes) or given back. Each cycle
    the task sends one ``extend`` request per stream for all of its leases,
    then sleeps a random time below 90% of the shortest ack deadline, so every
    lease is renewed before it can expire and many clients do not renew in
    lockstep. A lease held longer than ``max_lease`` seconds is dropped (no
    longer renewed), so a handler that hangs cannot hold a message forever.

    ``attachments`` names each stream's consumer and how long its leases last
    without renewal.
    """

    def __init__(
        self,
        api: API,
        attachments: Mapping[str, Attachment],
        *,
        max_lease: float = 3600.0,
        name: str = "streamkit-leaser",
    ) -> None:
        self.api = api
        self.attachments = attachments
        self.max_lease = max_lease
        self.name = name
        self._leases: dict[str, Event] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def __len__(self) -> int:
        return len(self._leases)

    @property
    def held_ids(self) -> KeysView[str]:
        """The ack ids leased now: a live, read-only view (cheap to test membership in)."""
        return self._leases.keys()

    @property
    def deadline(self) -> float:
        """The shortest lease deadline of the streams, in seconds."""
        return min((a.lease_deadline for a in self.attachments.values()), default=30.0)

    def add(self, events: Iterable[Event], now: float) -> None:
        """Lease freshly received deliveries (each with its ``stream`` set), at ``now``."""
        leases = self._leases
        for event in events:
            delivery = event.delivery
            if delivery is not None and event.stream is not None:
                delivery.leased_at = now
                leases[delivery.ack_id] = event

    def remove(self, ack_id: str) -> Event | None:
        """Stop leasing a delivery (it was settled); its event, None if it was not leased."""
        return self._leases.pop(ack_id, None)

    def pop_all(self) -> list[Event]:
        """Stop leasing everything and return the events held."""
        events = list(self._leases.values())
        self._leases.clear()
        return events

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
            if self._leases:
                await self._renew(timeout=deadline * 0.9)
            snooze = random.uniform(MIN_SNOOZE, max(MIN_SNOOZE, deadline * 0.9))
            await asyncio.sleep(max(0.0, started + snooze - loop.time()))

    def _drop_expired(self, now: float) -> None:
        cutoff = now - self.max_lease
        expired = [
            ack_id
            for ack_id, event in self._leases.items()
            if cast(Delivery, event.delivery).leased_at < cutoff
        ]
        if expired:
            log.warning(
                "%s: dropping %d leases held over max_lease=%ss; they will be redelivered",
                self.name,
                len(expired),
                self.max_lease,
            )
            for ack_id in expired:
                del self._leases[ack_id]

    async def _renew(self, timeout: float) -> None:
        by_stream: dict[str, list[str]] = {}
        for ack_id, event in self._leases.items():
            by_stream.setdefault(cast(str, event.stream), []).append(ack_id)
        requests = [
            self._extend(stream, ids[i : i + MAX_ACK_IDS])
            for stream, ids in by_stream.items()
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
