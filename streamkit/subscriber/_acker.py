"""`Acker`: a subscription's acks and nacks, batched and sent in the background.

Every settle goes through it: it drops the delivery's lease from the `Leaser`
and queues the id, in one step, so what the subscription holds and what it
has settled cannot disagree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping
from typing import Any

from streamkit._http.api import API
from streamkit._http.retry import Backoff, retriable
from streamkit.errors import ClientClosed, StreamkitError
from streamkit.protocol.wire import MAX_ACK_IDS
from streamkit.subscriber._attachment import Attachment
from streamkit.subscriber._leaser import Leaser

log = logging.getLogger(__name__)


class Acker:
    """Queues ack and nack ids per stream and sends them from one named task.

    `ack` and `nack` drop the delivery's lease and queue its id, and return;
    `give_back` nacks everything still leased. The task sends whatever has
    queued ``interval`` seconds after the first id arrived, or at once when
    ``max_ids`` ids wait for one request; the requests of one round go out
    together. A request that fails in a way that heals is retried with backoff
    until it goes through, so a server restart loses no acks; one that never
    will (the consumer was deleted) is logged and dropped. `stop` sends
    everything still queued before it returns.

    ``attachments`` names the consumer each stream's ids belong to.
    """

    def __init__(
        self,
        api: API,
        attachments: Mapping[str, Attachment],
        leaser: Leaser,
        *,
        interval: float = 0.005,
        max_ids: int = MAX_ACK_IDS,
        name: str = "streamkit-acker",
    ) -> None:
        if not 1 <= max_ids <= MAX_ACK_IDS:
            raise ValueError(f"max_ids must be within 1..{MAX_ACK_IDS}")
        self.api = api
        self.attachments = attachments
        self.leaser = leaser
        self.interval = interval
        self.max_ids = max_ids
        self.name = name
        self._acks: dict[str, list[str]] = {}
        self._nacks: dict[tuple[str, int, str | None], list[str]] = {}
        self._queued = asyncio.Event()
        self._flush_now = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def stopping(self) -> bool:
        """True once `stop` was called: `ack` and `nack` raise `ClientClosed`."""
        return self._stopping

    @property
    def pending(self) -> int:
        """Ids queued and not yet handed to a request."""
        return sum(map(len, self._acks.values())) + sum(map(len, self._nacks.values()))

    # Queueing (the hot path: no awaits, no allocation beyond the append).

    def ack(self, stream: str, ack_id: str) -> None:
        """Drop the lease and queue an ack; raises `ClientClosed` once the acker is stopping."""
        if self._stopping:
            raise ClientClosed("the subscription is closed")
        self.leaser.remove(stream, ack_id)
        ids = self._acks.get(stream)
        if ids is None:
            ids = self._acks[stream] = []
        ids.append(ack_id)
        self._queued.set()
        if len(ids) >= self.max_ids:
            self._flush_now.set()

    def nack(
        self, stream: str, ack_id: str, delay: float | None = None, reason: str | None = None
    ) -> None:
        """Drop the lease and queue a nack: redeliver after ``delay`` seconds (None: at once);
        nacks with the same delay and reason go in one request."""
        if self._stopping:
            raise ClientClosed("the subscription is closed")
        self.leaser.remove(stream, ack_id)
        key = (stream, int(delay * 1000) if delay else 0, reason)
        ids = self._nacks.get(key)
        if ids is None:
            ids = self._nacks[key] = []
        ids.append(ack_id)
        self._queued.set()
        if len(ids) >= self.max_ids:
            self._flush_now.set()

    def settle_many(
        self,
        stream: str,
        ack_ids: list[str],
        *,
        nack: bool = False,
        delay: float | None = None,
        reason: str | None = None,
    ) -> None:
        """`ack` (or `nack`) a batch's worth of ids of one stream, sent at once: they
        fill a request by themselves, so there is nothing to wait for."""
        if self._stopping:
            raise ClientClosed("the subscription is closed")
        remove = self.leaser.remove
        for ack_id in ack_ids:
            remove(stream, ack_id)
        if nack:
            key = (stream, int(delay * 1000) if delay else 0, reason)
            self._nacks.setdefault(key, []).extend(ack_ids)
        else:
            self._acks.setdefault(stream, []).extend(ack_ids)
        self._queued.set()
        self._flush_now.set()

    def give_back(self) -> dict[str, list[str]]:
        """Nack every delivery still leased, to be delivered again at once (the
        subscription is closing); returns their ack ids, per stream."""
        held = self.leaser.pop_all()
        for stream, ack_ids in held.items():
            self.settle_many(stream, ack_ids, nack=True)
        return held

    # Lifecycle.

    def start(self) -> None:
        """Start the sending task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, timeout: float) -> None:
        """Send everything queued (for up to ``timeout`` seconds, retries included), then stop."""
        self._stopping = True
        self._queued.set()
        self._flush_now.set()
        task = self._task
        if task is None:
            return
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                log.error(
                    "%s: gave up after %.1fs; %d queued ids and the requests in flight may "
                    "not have reached the server (those deliveries will be redelivered)",
                    self.name,
                    timeout,
                    self.pending,
                )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # The task.

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._queued.wait()
            if not self._flush_now.is_set():
                timer = loop.call_later(self.interval, self._flush_now.set)
                await self._flush_now.wait()
                timer.cancel()
            self._queued.clear()
            self._flush_now.clear()
            requests = self._take()
            if requests:
                await asyncio.gather(*requests)
            if self._stopping and not self._acks and not self._nacks:
                return

    def _take(self) -> list[Coroutine[Any, Any, None]]:
        """Turn everything queued into requests of at most ``max_ids`` ids each."""
        acks, self._acks = self._acks, {}
        nacks, self._nacks = self._nacks, {}
        requests = [
            self._send(stream, chunk, None)
            for stream, ids in acks.items()
            for chunk in _chunks(ids, self.max_ids)
        ]
        requests += [
            self._send(stream, chunk, delay_ms, reason)
            for (stream, delay_ms, reason), ids in nacks.items()
            for chunk in _chunks(ids, self.max_ids)
        ]
        return requests

    async def _send(
        self, stream: str, ids: list[str], nack_delay_ms: int | None, reason: str | None = None
    ) -> None:
        """Ack ``ids`` (or nack them when ``nack_delay_ms`` is given), retrying what heals."""
        verb = "ack" if nack_delay_ms is None else "nack"
        backoff = Backoff()
        while True:
            consumer = self.attachments[stream].consumer
            try:
                if nack_delay_ms is None:
                    await self.api.ack(stream, consumer, ids)
                else:
                    delay = nack_delay_ms / 1000 if nack_delay_ms else None
                    await self.api.nack(stream, consumer, ids, delay, reason)
            except Exception as exc:
                if not retriable(exc, resend_safe=True):
                    log.warning(
                        "%s: dropping %d %ss on %r that cannot succeed: %r",
                        self.name,
                        len(ids),
                        verb,
                        stream,
                        exc,
                        exc_info=not isinstance(exc, StreamkitError),
                    )
                    return
                log.log(
                    logging.WARNING if backoff.failures == 0 else logging.DEBUG,
                    "%s: %d %ss on %r failed (%r); retrying",
                    self.name,
                    len(ids),
                    verb,
                    stream,
                    exc,
                )
                await backoff.wait(exc)
            else:
                return


def _chunks(ids: list[str], size: int) -> list[list[str]]:
    if len(ids) <= size:
        return [ids]
    return [ids[i : i + size] for i in range(0, len(ids), size)]
