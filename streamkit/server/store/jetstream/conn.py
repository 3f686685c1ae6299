"""The NATS side of the JetStream engine: one connection, JetStream API calls,
and replies that come as several messages (batched direct gets, pull requests)
routed through one wildcard inbox subscription.

This is the only module of the engine that knows nats-py's exceptions; it maps
them once to `JetStreamUnavailable` (retryable) or `JsApiError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import nats.errors
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg

from streamkit.server.store.base import StoreError, StoreFull, StoreUnavailable
from streamkit.server.store.jetstream.codec import ACK_PREFIX

log = logging.getLogger(__name__)

API = "$JS.API"

# JetStream API error codes the engine reacts to.
ERR_STREAM_NOT_FOUND = 10059
ERR_STREAM_NAME_IN_USE = 10058
ERR_CONSUMER_NOT_FOUND = 10014
ERR_CONSUMER_EXISTS = 10148
ERR_CONSUMER_NAME_EXISTS = 10013
ERR_NO_MESSAGE_FOUND = 10037
ERR_BATCH_DUPLICATE_ID = 10201
ERR_BATCH_TOO_MANY_INFLIGHT = 10210
ERR_WRONG_LAST_MSG_ID = 10070
ERR_STORAGE_FULL = frozenset({10023, 10028, 10047})
"""Insufficient resources; memory, storage resources exceeded: 507 to the client."""

_ERROR_LOG_INTERVAL = 10.0
"""Seconds between two logged NATS errors while reconnecting."""

_NATS_UNAVAILABLE = (
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.errors.FlushTimeoutError,
)


class JetStreamUnavailable(StoreUnavailable):
    """NATS or JetStream did not answer in time (or at all); the request may be retried."""


class NoResponders(JetStreamUnavailable):
    """Nothing listens on the subject: the stream or consumer is gone, or JetStream is down."""


class JsApiError(StoreError):
    """JetStream refused a request; ``err_code`` is JetStream's own error code."""

    def __init__(self, status: int, err_code: int, description: str) -> None:
        super().__init__(f"JetStream error {err_code}: {description}")
        self.status = status
        self.err_code = err_code
        self.description = description


class JetStreamStorageFull(JsApiError, StoreFull):
    """JetStream has no room left (its storage or its account's limit): a 507, retryable."""


def api_error(body: Mapping[str, Any]) -> JsApiError | None:
    """The error carried by a JetStream API response or PubAck, if any."""
    err = body.get("error")
    if not isinstance(err, dict):
        return None
    full = int(err.get("err_code", 0)) in ERR_STORAGE_FULL
    return (JetStreamStorageFull if full else JsApiError)(
        int(err.get("code", 0)), int(err.get("err_code", 0)), str(err.get("description", ""))
    )


def status_of(msg: Msg) -> str | None:
    """The status code of a control message (``404``, ``408``, ...), None for data."""
    headers = msg.headers
    if headers is None or msg.data:
        return None
    return headers.get("Status")


async def connect(
    urls: Sequence[str],
    *,
    name: str,
    connect_timeout: float,
    reconnect_wait: float,
) -> Client:
    """Connect to the first reachable server of ``urls``; keep reconnecting forever after.

    Startup fails fast with `JetStreamUnavailable` naming the URLs when
    none answers, instead of retrying in the background while the gateway
    looks healthy.
    """
    nc = Client()
    failures: list[str] = []
    last_logged = [0.0]

    async def on_error(exc: Exception) -> None:
        if not nc.is_connected and not nc.is_reconnecting:
            failures.append(str(exc) or type(exc).__name__)
            return
        now = asyncio.get_running_loop().time()
        if now - last_logged[0] >= _ERROR_LOG_INTERVAL:  # one line per retry would flood
            last_logged[0] = now
            log.warning("NATS error: %s", str(exc) or type(exc).__name__)

    async def on_disconnect() -> None:
        if not nc.is_closed:
            log.warning("disconnected from NATS; reconnecting")

    async def on_reconnect() -> None:
        url = nc.connected_url
        log.info("reconnected to NATS at %s", url.netloc if url else "?")

    try:
        await asyncio.wait_for(
            nc.connect(
                servers=list(urls),
                name=name,
                connect_timeout=max(1, round(connect_timeout)),
                reconnect_time_wait=0,
                max_reconnect_attempts=1,
                error_cb=on_error,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                ping_interval=5,
                max_outstanding_pings=3,
                pending_size=32 * 1024 * 1024,
                flush_timeout=max(connect_timeout, 1.0),
            ),
            timeout=connect_timeout * (len(urls) * 2 + 1),
        )
    except (OSError, asyncio.TimeoutError, nats.errors.Error) as exc:
        with contextlib.suppress(Exception):
            await nc.close()
        detail = failures[-1] if failures else (str(exc) or type(exc).__name__)
        raise JetStreamUnavailable(
            f"cannot connect to NATS at {', '.join(urls)}: {detail}"
        ) from None
    # From here on a lost server is reconnected to, forever, with a pause.
    nc.options["max_reconnect_attempts"] = -1
    nc.options["reconnect_time_wait"] = reconnect_wait
    return nc


class ReplyStream:
    """A private reply subject whose messages queue up until read."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def next(self, timeout: float) -> Msg:
        """The next reply; `JetStreamUnavailable` when none comes in ``timeout``."""
        if not self.queue.empty():  # replies come in bursts: skip wait_for's task
            return self.queue.get_nowait()
        try:
            return await asyncio.wait_for(self.queue.get(), max(timeout, 0.001))
        except asyncio.TimeoutError:
            raise JetStreamUnavailable("timed out waiting for JetStream") from None


class _PullInbox:
    """The private subscription one pull request is answered on.

    Deliveries arrive with their own subject, so each pull needs a
    subscription of its own. Once abandoned (its caller was cancelled or gave
    up), whatever still arrives is negatively acknowledged at once instead of
    waiting out its ack deadline.
    """

    def __init__(self, conn: JsConn) -> None:
        self._conn = conn
        self.subject = conn.nc.new_inbox()
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._abandoned = False
        self._sub: Any = None

    async def open(self) -> None:
        self._sub = await self._conn.subscribe(self.subject, self._on_msg)

    async def _on_msg(self, msg: Msg) -> None:
        if not self._abandoned:
            self._queue.put_nowait(msg)
        elif msg.reply.startswith(ACK_PREFIX):
            await self._conn.nak_all([msg])

    async def next(self, timeout: float) -> Msg:
        if not self._queue.empty():
            return self._queue.get_nowait()
        try:
            return await asyncio.wait_for(self._queue.get(), max(timeout, 0.001))
        except asyncio.TimeoutError:
            raise JetStreamUnavailable("timed out waiting for JetStream") from None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()

    async def abandon(self, linger: float) -> None:
        self._abandoned = True
        try:
            while not self._queue.empty():
                await self._on_msg(self._queue.get_nowait())
            await asyncio.sleep(linger)
        finally:
            await self.close()


class JsConn:
    """One NATS connection, the JetStream API over it, and a shared reply inbox.

    Messages reaching the inbox for a stream nobody reads any more (a receive
    that was cancelled or timed out) are negatively acknowledged at once, so a
    pull that outlives its caller never strands messages until their ack
    deadline.
    """

    def __init__(self, nc: Client, *, timeout: float) -> None:
        self.nc = nc
        self.timeout = timeout
        self._inbox = nc.new_inbox()
        self._streams: dict[str, ReplyStream] = {}
        self._sub: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Subscribe the shared inbox."""
        self._sub = await self.nc.subscribe(self._inbox + ".*", cb=self._on_reply)

    async def close(self) -> None:
        """Stop background work, flush what is buffered, then close the connection."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.nc.is_closed:
            return
        with contextlib.suppress(*_NATS_UNAVAILABLE, asyncio.TimeoutError):
            await asyncio.wait_for(self.nc.flush(), self.timeout)
        with contextlib.suppress(*_NATS_UNAVAILABLE, asyncio.TimeoutError):
            await asyncio.wait_for(self.nc.close(), self.timeout)

    @property
    def max_payload(self) -> int:
        """Largest message (headers + data) the server accepts."""
        return int(self.nc.max_payload)

    async def _on_reply(self, msg: Msg) -> None:
        stream = self._streams.get(msg.subject)
        if stream is not None:
            stream.queue.put_nowait(msg)

    @contextlib.asynccontextmanager
    async def replies(self) -> AsyncIterator[ReplyStream]:
        """A reply subject for the duration of the block (single-reply-subject answers only:
        JetStream deliveries carry their own subject and need `_PullInbox`)."""
        stream = ReplyStream(f"{self._inbox}.{secrets.token_hex(8)}")
        self._streams[stream.subject] = stream
        try:
            yield stream
        finally:
            del self._streams[stream.subject]

    async def subscribe(self, subject: str, cb: Callable[[Msg], Awaitable[None]]) -> Any:
        """A plain subscription (unsubscribe it when done)."""
        try:
            return await self.nc.subscribe(subject, cb=cb)
        except _NATS_UNAVAILABLE as exc:
            raise JetStreamUnavailable(f"NATS unavailable: {exc or type(exc).__name__}") from None

    # -- plain requests -------------------------------------------------------

    async def publish(
        self, subject: str, payload: bytes = b"", *, headers: dict[str, str] | None = None
    ) -> None:
        """Fire-and-forget publish (buffered while reconnecting)."""
        await self._send(subject, payload, "", headers)

    async def _send(
        self, subject: str, payload: bytes, reply: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            await self.nc.publish(subject, payload, reply=reply, headers=headers)
        except _NATS_UNAVAILABLE as exc:
            raise JetStreamUnavailable(f"NATS unavailable: {exc or type(exc).__name__}") from None

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Msg:
        """One request, one reply; `NoResponders` when nothing listens."""
        try:
            return await self.nc.request(
                subject, payload, timeout=timeout or self.timeout, headers=headers
            )
        except nats.errors.NoRespondersError:
            raise NoResponders(f"no responders on {subject}") from None
        except _NATS_UNAVAILABLE as exc:
            raise JetStreamUnavailable(f"NATS unavailable: {exc or type(exc).__name__}") from None

    async def api(
        self, endpoint: str, body: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Call ``$JS.API.<endpoint>``; raises `JsApiError` on an error response."""
        payload = orjson.dumps(body) if body is not None else b""
        try:
            msg = await self.request(f"{API}.{endpoint}", payload, timeout=timeout)
        except NoResponders:
            raise JetStreamUnavailable("JetStream is not available (no responders)") from None
        resp: dict[str, Any] = orjson.loads(msg.data)
        err = api_error(resp)
        if err is not None:
            raise err
        return resp

    # -- multi-message replies ---------------------------------------------------

    async def settle(self, subjects: Sequence[str], payload: bytes, timeout: float) -> bool:
        """Send ``payload`` (``+ACK``, ``-NAK``, ``+WPI``) to ack subjects; False if any had
        no responder (its consumer is gone).

        Each is sent with a reply subject: JetStream answers once it has applied
        it, so what the caller reads next reflects it. Subjects JetStream does
        not know get no answer; they are waited for until ``timeout``, then ignored.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        answered, responders = 0, True
        async with self.replies() as replies:
            for subject in subjects:
                await self._send(subject, payload, replies.subject)
            while answered < len(subjects):
                try:
                    msg = await replies.next(deadline - loop.time())
                except JetStreamUnavailable:
                    if not self.nc.is_connected:
                        raise
                    break
                answered += 1
                if status_of(msg) == "503":
                    responders = False
        return responders

    async def direct_get(self, js_stream: str, body: Mapping[str, Any]) -> list[Msg]:
        """A direct get: one message, or with ``batch``/``multi_last`` every message up
        to the end-of-batch marker. Missing messages are simply absent."""
        single = "batch" not in body and "multi_last" not in body
        out: list[Msg] = []
        async with self.replies() as replies:
            await self._send(f"{API}.DIRECT.GET.{js_stream}", orjson.dumps(body), replies.subject)
            while True:
                msg = await replies.next(self.timeout)
                status = status_of(msg)
                if status is None:
                    out.append(msg)
                    if single:
                        return out
                elif status in ("204", "404"):
                    return out
                elif status == "503":
                    raise NoResponders(f"no direct get responders for {js_stream}")
                else:
                    desc = (msg.headers or {}).get("Description", "")
                    raise JsApiError(int(status), 0, f"direct get failed: {desc}")

    async def pull(
        self,
        js_stream: str,
        consumer: str,
        *,
        batch: int,
        expires_ms: int,
        no_wait: bool,
        max_bytes: int = 0,
    ) -> tuple[list[Msg], str | None]:
        """One pull request, read to its end: (deliveries, terminating status or None).

        A request is always read until JetStream ends it (batch filled, 404,
        408, 409), so no delivery is ever sent to a reply subject nobody reads;
        if the caller is cancelled anyway, what was received is handed back.
        """
        body: dict[str, Any] = {"batch": batch, "expires": expires_ms * 1_000_000}
        if no_wait:
            body["no_wait"] = True
        if max_bytes:
            body["max_bytes"] = max_bytes
        out: list[Msg] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + expires_ms / 1000 + self.timeout
        inbox = _PullInbox(self)
        await inbox.open()
        try:
            await self._send(
                f"{API}.CONSUMER.MSG.NEXT.{js_stream}.{consumer}", orjson.dumps(body), inbox.subject
            )
            while len(out) < batch:
                msg = await inbox.next(deadline - loop.time())
                status = status_of(msg)
                if status is None:
                    out.append(msg)
                elif status == "100":
                    continue  # idle heartbeat
                elif status == "503":
                    raise NoResponders(f"no consumer {consumer} on {js_stream}")
                else:
                    desc = (msg.headers or {}).get("Description", "")
                    await inbox.close()
                    return out, f"{status} {desc}".strip()
            await inbox.close()
            return out, None
        except BaseException:
            await self.nak_all(out)
            # The request may still be open on the server: keep listening for a
            # while and hand back whatever it delivers, then let it go.
            self._abandon(inbox, deadline - loop.time())
            raise

    def _abandon(self, inbox: _PullInbox, linger: float) -> None:
        task = asyncio.get_running_loop().create_task(
            inbox.abandon(max(linger, 0.0) + 1.0), name="streamkit-jetstream-abandoned-pull"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def nak_all(self, msgs: Sequence[Msg]) -> None:
        """Hand deliveries straight back (best effort)."""
        for msg in msgs:
            with contextlib.suppress(*_NATS_UNAVAILABLE):
                await self.nc.publish(msg.reply, b"-NAK")
