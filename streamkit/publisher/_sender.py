"""Sending one batch of published events until every event in it is acked or nacked.

`BatchSender.deliver` owns the fate of a batch: it sends it with
``api.send(..., retry=False)``, retries transient failures with jittered
exponential backoff until the batch's ``retry_deadline`` (resending the same
event ids, which the server dedupes), nacks the events a 422 names and resends
the rest, halves a batch the server finds too large, and settles each event
exactly once: its future first, then its ``on_ack`` / ``on_nack`` callback.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from streamkit import errors
from streamkit._http.api import API
from streamkit._http.retry import Backoff, retriable
from streamkit.models import Ack, Event, Publication

log = logging.getLogger(__name__)

AckCallback = Callable[[Ack], Any]
"""Called with the `Ack` of a stored event; may return an awaitable, which is awaited."""

NackCallback = Callable[[errors.Nack], Any]
"""Called with the `Nack` of an event that was not stored; may return an awaitable."""


def utf8_size(text: str) -> int:
    """The length of ``text`` in UTF-8 bytes (without encoding it when it is ASCII)."""
    return len(text) if text.isascii() else len(text.encode())


class QueuedEvent(Publication):
    """A publication waiting in a lane or in flight: its event's message, encoded as
    JSON text when the event was queued, and its large ``data`` as bytes when the
    message carries a ``data_size`` instead (`streamkit.protocol.split`); their
    ``size`` in UTF-8 bytes (for batching and the buffer bound), and its callbacks.

    It keeps no reference to the event. The event keeps its publication, so one
    the caller lets go of is freed at once, and what waits for the server is one
    object per event instead of two: fewer objects for the garbage collector to
    walk while thousands of events are in flight. The message is kept as `str`:
    the bytes orjson returns take at least 4 KiB each, however short the JSON.
    """

    __slots__ = ("data", "message", "on_ack", "on_nack", "size")

    def __init__(
        self,
        event: Event,
        message: str,
        data: bytes | None,
        size: int,
        on_ack: AckCallback | None,
        on_nack: NackCallback | None,
    ) -> None:
        Publication.__init__(self, event)  # not super(): one object less per event
        self.message = message
        self.data = data
        self.size = size
        self.on_ack = on_ack
        self.on_nack = on_nack

    @staticmethod
    def messages(part: Sequence[QueuedEvent]) -> list[str]:
        """The encoded message objects of ``part``, for ``POST .../messages``."""
        return [queued.message for queued in part]

    @staticmethod
    def blobs(part: Sequence[QueuedEvent]) -> list[bytes]:
        """The data of ``part``'s messages that carry a ``data_size``, in order."""
        return [queued.data for queued in part if queued.data is not None]


# Nack codes: why an event was not stored.
INVALID = "invalid"
"""The server rejected the event itself (a 422 naming it, or the whole batch)."""
TOO_LARGE = "too_large"
"""The server refused a request holding only this event as too large (413)."""
REJECTED = "rejected"
"""The server refused the request for a reason that retrying will not change (4xx)."""
UNAVAILABLE = "unavailable"
"""Transient failures lasted past ``retry_deadline``; the event may or may not be stored."""
BAD_RESPONSE = "bad_response"
"""The server answered with a body that is not a valid send response."""
CLOSED = "closed"
"""The publisher closed before the event could be sent (or its outcome was known)."""
INTERNAL = "internal"
"""A bug in streamkit; the error says what happened."""

_CODES_BY_ERROR: dict[type[errors.StreamkitError], str] = {
    errors.NotFound: "not_found",
    errors.Unauthorized: "unauthorized",
    errors.ValidationError: INVALID,
    errors.PayloadTooLarge: TOO_LARGE,
}

_MESSAGE_FIELD = re.compile(r"^messages\[(\d+)\]\.?(.*)$")


def rejected_messages(exc: errors.APIError, size: int) -> dict[int, str]:
    """Map each batch index a 422 names (``messages[3].key``) to its error text.

    Returns an empty dict when the error does not single out messages (or names
    one outside the batch): then the whole batch is what was rejected.
    """
    problems: dict[int, list[str]] = {}
    for field, texts in exc.validation_errors.items():
        match = _MESSAGE_FIELD.match(field)
        if match is None or int(match.group(1)) >= size:
            return {}
        attribute = match.group(2)
        text = ", ".join(texts) or "is invalid"
        problems.setdefault(int(match.group(1)), []).append(
            f"{attribute} {text}" if attribute else text
        )
    return {index: "; ".join(texts) for index, texts in problems.items()}


def _nack_code(exc: errors.StreamkitError) -> str:
    return _CODES_BY_ERROR.get(type(exc), REJECTED)


def _run_callback(callback: Callable[[Any], Any], outcome: object, event_id: str) -> Any:
    """Call a callback, logging (not raising) what it raises; return what it returned."""
    try:
        return callback(outcome)
    except Exception:
        log.exception("publish callback failed for event %s (%r)", event_id, callback)
        return None


async def _finish_callback(result: Awaitable[Any], event_id: str) -> None:
    try:
        await result
    except Exception:
        log.exception("async publish callback failed for event %s", event_id)


async def ack_events(
    part: Sequence[QueuedEvent], seqs: Sequence[int], committed: Sequence[datetime]
) -> None:
    """Settle each event of ``part`` with its seq and commit time (same order), then call
    ``on_ack``. The `Ack` object is made only for a callback (or a waiter) that wants it."""
    for queued, seq, stamp in zip(part, seqs, committed, strict=True):
        on_ack = queued.on_ack
        if on_ack is None:
            queued.settle_ack(seq, stamp)
            continue
        ack = Ack(queued.id, seq, stamp)
        if not queued.settle(ack):
            continue
        result = _run_callback(on_ack, ack, queued.id)
        if result is not None and inspect.isawaitable(result):
            await _finish_callback(result, queued.id)


async def nack_events(part: Iterable[QueuedEvent], code: str, error: str) -> None:
    """Settle every not yet settled event of ``part`` with a `Nack`, then call ``on_nack``."""
    for queued in part:
        nack = errors.Nack(queued.id, code, error)
        if not queued.settle(nack):
            continue
        if (on_nack := queued.on_nack) is not None:
            result = _run_callback(on_nack, nack, queued.id)
            if result is not None and inspect.isawaitable(result):
                await _finish_callback(result, queued.id)


class BatchSender:
    """Delivers batches of one stream's events: send, retry, split, settle."""

    def __init__(
        self,
        api: API,
        stream: str,
        *,
        retry_deadline: float,
        backoff: float,
        max_backoff: float,
    ) -> None:
        self.api = api
        self.stream = stream
        self.retry_deadline = retry_deadline
        self.backoff = backoff
        self.max_backoff = max_backoff

    async def deliver(self, batch: Sequence[QueuedEvent]) -> None:
        """Send ``batch`` until every event in it is acked or nacked."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_deadline
        todo = [list(batch)]  # a stack of parts still to send; the last one goes next
        backoff = Backoff(self.backoff, self.max_backoff)
        while todo:
            part = todo.pop()
            try:
                seqs, committed = await self.api.send_for_seqs(
                    self.stream,
                    QueuedEvent.messages(part),
                    blobs=QueuedEvent.blobs(part),
                    retry=False,
                )
            except errors.ValidationError as exc:
                await self._reject(part, exc, todo)
            except errors.PayloadTooLarge as exc:
                if len(part) == 1:
                    await nack_events(part, TOO_LARGE, exc.summary)
                else:
                    half = len(part) // 2
                    todo += [part[half:], part[:half]]
            except errors.DecodeError as exc:
                await nack_events(part, BAD_RESPONSE, str(exc))
            except errors.ClientClosed as exc:
                await nack_events(part, CLOSED, str(exc))
            except (errors.TransportError, errors.APIError) as exc:
                # Resends carry the same ids: a batch the server stored before failing
                # is acked, not stored again.
                if not retriable(exc, resend_safe=True):
                    await nack_events(part, _nack_code(exc), str(exc))
                elif loop.time() >= deadline:
                    error = f"gave up after {backoff.failures + 1} attempt(s): {exc}"
                    await nack_events(part, UNAVAILABLE, error)
                else:
                    delay = min(backoff.delay(exc), deadline - loop.time())
                    log.debug("retrying a batch of %s in %.3fs after %r", self.stream, delay, exc)
                    await asyncio.sleep(delay)
                    todo.append(part)
            else:
                await ack_events(part, seqs, committed)

    async def _reject(
        self, part: list[QueuedEvent], exc: errors.ValidationError, todo: list[list[QueuedEvent]]
    ) -> None:
        """Nack the events a 422 names and queue the rest to be sent again."""
        bad = rejected_messages(exc, len(part))
        if not bad:
            await nack_events(part, INVALID, str(exc))
            return
        for index, error in bad.items():
            await nack_events([part[index]], INVALID, error)
        rest = [p for i, p in enumerate(part) if i not in bad]
        if rest:
            todo.append(rest)
